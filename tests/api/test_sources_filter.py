"""The `sources` filter end to end: POST /ask on a real server, and `rag ask --source`
as a real subprocess, over the seeds index."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.servers import ROOT, Server

pytestmark = pytest.mark.slow

# Smagin is quoted in 000 and 001 (a retold story); 002 is about the protests.
QUESTION = "Who is Nikita Smagin?"
ONE = "001_77e29c8a411f06ba.txt"
OTHER = "002_3474f9fe90996d73.txt"


def _ask(server: Server, body: dict) -> httpx.Response:
    return httpx.post(f"{server.url}/ask", json=body, timeout=60)


def test_unfiltered_answer_comes_from_another_file(live_server: Server) -> None:
    body = _ask(live_server, {"question": QUESTION, "top_k": 10}).json()
    assert body["answer_source"]["source"] == "000_7144c9d64f512035.txt"
    assert len({c["source"] for c in body["citations"]}) > 1


def test_sources_restrict_the_answer_and_every_citation(live_server: Server) -> None:
    r = _ask(live_server, {"question": QUESTION, "top_k": 10, "sources": [ONE]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["answer_source"]["source"] == ONE
    assert "Smagin" in body["answer"]
    text = (ROOT / "seeds" / ONE).read_text(encoding="utf-8")
    assert text[body["answer_source"]["start"] : body["answer_source"]["end"]] == body["answer"]
    assert {c["source"] for c in body["citations"]} == {ONE}
    for c in body["citations"]:
        assert all(a["source"] == ONE for a in c["also_in"])


def test_two_sources_are_both_searched(live_server: Server) -> None:
    body = _ask(live_server, {"question": QUESTION, "top_k": 20, "sources": [ONE, OTHER]}).json()
    assert {c["source"] for c in body["citations"]} == {ONE, OTHER}


def test_an_unknown_source_is_422_naming_it(live_server: Server) -> None:
    r = _ask(live_server, {"question": QUESTION, "sources": [ONE, "nope.txt"]})
    assert r.status_code == 422
    error = r.json()["error"]
    assert "'nope.txt'" in error["message"] and ONE not in error["message"]
    assert "GET /sources" in error["message"]


@pytest.mark.parametrize(
    ("sources", "says"),
    [([], "sources"), ("001.txt", "sources"), ([1], "sources.0")],
)
def test_malformed_sources_are_422(live_server: Server, sources: object, says: str) -> None:
    r = _ask(live_server, {"question": QUESTION, "sources": sources})
    assert r.status_code == 422
    assert says in r.json()["error"]["message"]


def test_openapi_documents_sources(live_server: Server) -> None:
    schema = httpx.get(f"{live_server.url}/openapi.json", timeout=10).json()
    field = schema["components"]["schemas"]["AskRequest"]["properties"]["sources"]
    assert "GET /sources" in field["description"]


def test_cli_source_flag_restricts_the_answer(seed_index_dir: Path) -> None:
    def ask(*extra: str) -> subprocess.CompletedProcess[str]:
        index = str(seed_index_dir)
        return subprocess.run(
            [sys.executable, "-m", "rag", "ask", QUESTION, "--index", index, "--json", *extra],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )

    proc = ask("--top-k", "10", "--source", ONE)
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    assert body["answer_source"]["source"] == ONE
    assert {c["source"] for c in body["citations"]} == {ONE}
    both = json.loads(ask("--top-k", "20", "--source", ONE, "--source", OTHER).stdout)
    assert {c["source"] for c in both["citations"]} == {ONE, OTHER}
    bad = ask("--source", "nope.txt")
    assert bad.returncode == 2
    assert "'nope.txt'" in bad.stderr and "Traceback" not in bad.stderr
