"""Structured logs of a real server (RAG_LOG_FORMAT=json): every line is one JSON object,
each failing request's line carries the id returned in its X-Request-ID header, and
questions stay out of the log unless RAG_LOG_QUESTIONS=1."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.servers import serve

pytestmark = pytest.mark.slow

# Seconds a server may take to start: the model loads in a few, but far slower on a
# machine busy with other work.
STARTUP = 300

SECRET_QUESTION = "Who is Nikita Smagin?"


def log_lines(text: str) -> list[dict]:
    lines = [line for line in text.splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON log line: {line!r}")
    return parsed


def test_json_logs_tie_each_error_to_its_request(seed_index_dir: Path, tmp_path: Path) -> None:
    env = {"RAG_LOG_FORMAT": "json", "RAG_RELOAD_INTERVAL": "0"}
    with (
        serve(seed_index_dir, tmp_path, env=env, timeout=STARTUP) as server,
        httpx.Client(base_url=server.url, timeout=60) as c,
    ):
        chosen = c.post("/ask", json={"question": ""}, headers={"X-Request-ID": "my-req-42"})
        generated = c.get("/sources/no-such-file.txt")
        broken = c.post(
            "/ask", content=b'{"question": ', headers={"Content-Type": "application/json"}
        )
        ok = c.post("/ask", json={"question": SECRET_QUESTION})
        server.stop()
        lines = log_lines(server.log())

    assert chosen.headers["X-Request-ID"] == "my-req-42"
    for response, status, code in [
        (chosen, 422, "invalid_question"),
        (generated, 404, "source_not_found"),
        (broken, 400, "invalid_json"),
    ]:
        rid = response.headers["X-Request-ID"]
        assert response.status_code == status
        mine = [line for line in lines if line.get("request_id") == rid]
        assert len(mine) == 1, mine  # one access line, and no other request's line
        line = mine[0]
        assert (line["status"], line["error_code"], line["level"]) == (status, code, "WARNING")
        assert line["error_message"] == response.json()["error"]["message"]
        assert line["path"] == response.request.url.path
    assert generated.headers["X-Request-ID"] != broken.headers["X-Request-ID"]

    answered = [line for line in lines if line.get("request_id") == ok.headers["X-Request-ID"]]
    assert [line["status"] for line in answered] == [200]
    assert answered[0]["answer"] == ("null" if ok.json()["answer"] is None else "answered")
    assert answered[0]["route"] == "/ask"
    # Questions can be sensitive: not in the log by default, anywhere.
    assert SECRET_QUESTION not in server.log()
    assert "question" not in answered[0]
    # Uvicorn's own lines are JSON too, and the shutdown was logged.
    assert any(line["message"] == "Application startup complete." for line in lines)
    assert any(line["message"] == "Shutting down" for line in lines)


def test_questions_are_logged_only_when_asked_for(seed_index_dir: Path, tmp_path: Path) -> None:
    env = {"RAG_LOG_FORMAT": "json", "RAG_LOG_QUESTIONS": "1", "RAG_RELOAD_INTERVAL": "0"}
    with serve(seed_index_dir, tmp_path, env=env, timeout=STARTUP) as server:
        r = httpx.post(f"{server.url}/ask", json={"question": SECRET_QUESTION}, timeout=60)
        server.stop()
        lines = log_lines(server.log())
    mine = [line for line in lines if line.get("request_id") == r.headers["X-Request-ID"]]
    assert [line["question"] for line in mine] == [SECRET_QUESTION]


def test_text_logs_carry_the_request_id(seed_index_dir: Path, tmp_path: Path) -> None:
    with serve(
        seed_index_dir, tmp_path, env={"RAG_RELOAD_INTERVAL": "0"}, timeout=STARTUP
    ) as server:
        r = httpx.get(f"{server.url}/sources/missing.txt", headers={"X-Request-ID": "txt-1"})
        server.stop()
        log = server.log()
    assert r.headers["X-Request-ID"] == "txt-1"
    [line] = [line for line in log.splitlines() if "[req txt-1]" in line]
    assert " WARNING api.access [req txt-1] GET /sources/missing.txt 404 " in line
    assert "error_code=source_not_found" in line
