"""GET /ready on real servers: 503 before the first index loads, while a new build
loads, and while the index's search backend (Qdrant) cannot be reached; 200 otherwise.
Each 503 has the standard error shape and a code saying which."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import Settings
from rag.config import IndexConfig, PipelineConfig
from rag.embedder import Embedder
from rag.index import build_index
from scripts.harness import start
from tests.api.scrape import parse, value
from tests.servers import free_port, serve

pytestmark = pytest.mark.slow

# Seconds a server may take to start: the model loads in a few, but far slower on a
# machine busy with other work.
STARTUP = 300

QUESTION = {"question": "Who is Nikita Smagin?"}


def ready(url: str) -> tuple[int, dict]:
    r = httpx.get(f"{url}/ready", timeout=10)
    return r.status_code, r.json()


def set_manifest(index_dir: Path, **changes: object) -> str:
    """Publish a 'new build' the way a build does, by replacing manifest.json at once:
    the same files under a new build id (plus `changes`)."""
    path = index_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    tmp = index_dir / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest))
    os.replace(tmp, path)
    return manifest["build_id"]


def test_not_ready_until_the_first_index_is_loaded(seed_index_dir: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"  # does not exist yet
    env = {"RAG_WAIT_FOR_INDEX": "1", "RAG_RELOAD_INTERVAL": "0.2"}
    server = start(index_dir, tmp_path / "server.log", env)
    try:
        server.wait_until(lambda url: httpx.get(f"{url}/ready", timeout=1).status_code > 0, STARTUP)
        status, body = ready(server.url)
        assert status == 503
        assert body["error"]["code"] == "no_index"
        assert f"waiting for a build at {index_dir}" in body["error"]["message"]
        with httpx.Client(base_url=server.url, timeout=30) as c:
            asked = c.post("/ask", json=QUESTION)
            assert asked.status_code == 503
            assert asked.json()["error"]["code"] == "index_unavailable"
            assert c.get("/health").status_code == 503  # no index to describe yet
            samples = parse(c.get("/metrics").text)
            assert value(samples, "rag_ready") == 0
            assert value(samples, "rag_index_chunks") == 0

            # The build appears, all at once, as `rag index` swaps it into place.
            staging = tmp_path / "staging"
            shutil.copytree(seed_index_dir, staging)
            os.rename(staging, index_dir)
            server.wait_until(lambda url: ready(url)[0] == 200, STARTUP)
            status, body = ready(server.url)
            build_id = json.loads((index_dir / "manifest.json").read_text())["build_id"]
            assert body == {"status": "ready", "build_id": build_id}
            assert c.post("/ask", json=QUESTION).status_code == 200
            assert c.get("/health").json()["build_id"] == build_id
            samples = parse(c.get("/metrics").text)
            assert value(samples, "rag_ready") == 1
            assert value(samples, "rag_index_reloads_total", outcome="success") == 1
            assert value(samples, "rag_index_chunks") == c.get("/health").json()["counts"]["chunks"]
    finally:
        server.stop()
    assert "Traceback" not in server.log()


def failures(c: httpx.Client) -> float:
    return value(parse(c.get("/metrics").text), "rag_index_reloads_total", outcome="failure")


def test_not_ready_while_a_new_build_loads(seed_index_dir: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    shutil.copytree(seed_index_dir, index_dir)
    old = json.loads((index_dir / "manifest.json").read_text())["build_id"]
    with serve(index_dir, tmp_path, env={"RAG_RELOAD_INTERVAL": "0.2"}, timeout=STARTUP) as server:
        # Three pollers, each with its own record: the window is a fraction of a second.
        seen: list[list[tuple[int, str | None, str]]] = [[], [], []]  # (status, id/code, msg)
        stop = threading.Event()

        def poll(record: list[tuple[int, str | None, str]]) -> None:
            with httpx.Client(base_url=server.url, timeout=10) as c:
                while not stop.is_set():
                    r = c.get("/ready")
                    body = r.json()
                    if r.status_code == 200:
                        record.append((200, body["build_id"], ""))
                    else:
                        error = body["error"]
                        record.append((r.status_code, error["code"], error["message"]))
                    time.sleep(0.002)

        pollers = [threading.Thread(target=poll, args=(record,)) for record in seen]
        for poller in pollers:
            poller.start()
        try:
            time.sleep(0.5)
            new = set_manifest(index_dir, build_id="a" * 32)
            deadline = time.monotonic() + 60
            while not all(record and record[-1][:2] == (200, new) for record in seen):
                assert time.monotonic() < deadline, [record[-3:] for record in seen]
                time.sleep(0.05)
        finally:
            stop.set()
            for poller in pollers:
                poller.join()
        # Each poller saw: ready on the old build, then (if it polled in the window) not
        # ready while the new one loaded, then ready on the new one; nothing else.
        reloading = [s for record in seen for s in record if s[:2] == (503, "reloading")]
        assert reloading, "no poll fell in the reload"
        for record in seen:
            kinds = [s[:2] for s in record]
            first = next((i for i, k in enumerate(kinds) if k != (200, old)), len(kinds))
            last = next((i for i, k in enumerate(kinds) if k == (200, new)), len(kinds))
            assert kinds[0] == (200, old)
            assert set(kinds[first:last]) <= {(503, "reloading")}
            assert set(kinds[last:]) == {(200, new)}
        assert {s[2] for s in reloading} == {
            f"loading index build {new}; build {old} still answers"
        }
        polls = sum(map(len, seen))
        print(f"/ready polled {polls} times; 503 'reloading' {len(reloading)} times")

        # A build that cannot be loaded is refused: the served one stays, and stays ready.
        files = json.loads((index_dir / "manifest.json").read_text())["files"]
        damaged = set_manifest(
            index_dir, build_id="b" * 32, files={**files, "chunks.jsonl": "0" * 64}
        )
        deadline = time.monotonic() + 30
        with httpx.Client(base_url=server.url, timeout=30) as c:
            while failures(c) < 1:
                assert time.monotonic() < deadline, "the damaged build was never tried"
                time.sleep(0.1)
            assert ready(server.url) == (200, {"status": "ready", "build_id": new})
            assert c.post("/ask", json=QUESTION).status_code == 200
            samples = parse(c.get("/metrics").text)
        assert value(samples, "rag_index_reloads_total", outcome="success") == 1
        assert value(samples, "rag_index_reloads_total", outcome="failure") == 1
        assert [dict(k)["build_id"] for k in samples["rag_index_info"]] == [new]
        assert damaged != new


TINY_CORPUS = {
    "lisbon.txt": "Lisbon is the capital of Portugal.\nIts trams climb seven hills.\n",
    "oslo.txt": "Oslo is the capital of Norway.\nIts opera house slopes into the fjord.\n",
}


@pytest.fixture
def qdrant_index(tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small index whose chunks live in Qdrant (embedded store in the index folder)."""
    for name in ("RAG_QDRANT_URL", "RAG_QDRANT_SETTINGS", "RAG_QDRANT_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in TINY_CORPUS.items():
        (corpus / name).write_text(text)
    out = tmp_path / "qdrant-index"
    build_index(corpus, out, PipelineConfig(index=IndexConfig(backend="qdrant")), embedder=embedder)
    return out


def test_not_ready_when_the_qdrant_server_does_not_answer(
    qdrant_index: Path, tmp_path: Path
) -> None:
    """The index lives on a Qdrant server (the manifest says where) that is not there."""
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    manifest = json.loads((qdrant_index / "manifest.json").read_text())
    settings = {**manifest["backend"]["settings"], "url": url, "location": "url"}
    backend = {**manifest["backend"], "settings": settings}
    set_manifest(qdrant_index, backend=backend)
    env = {"RAG_WAIT_FOR_INDEX": "1", "RAG_RELOAD_INTERVAL": "0.3"}
    server = start(qdrant_index, tmp_path / "server.log", env)
    try:
        server.wait_until(lambda u: ready(u)[1].get("error", {}).get("code") != "no_index", STARTUP)
        time.sleep(1)  # several more attempts: still not ready, and logged once
        status, body = ready(server.url)
        assert status == 503
        assert body["error"]["code"] == "backend_unreachable"
        assert f"Qdrant at {url} does not answer" in body["error"]["message"]
        samples = parse(httpx.get(f"{server.url}/metrics").text)
        assert value(samples, "rag_index_reloads_total", outcome="failure") >= 2
    finally:
        server.stop()
    assert server.log().count("cannot be loaded yet") == 1


def test_not_ready_when_qdrant_goes_away_while_serving(qdrant_index: Path) -> None:
    """The embedded store's client closed under a running app: the backend no longer
    answers, so readiness drops, and questions get 503 instead of a 500."""
    app = create_app(Settings(index_dir=qdrant_index, reload_interval=0))
    with TestClient(app) as c:
        assert c.get("/ready").json()["status"] == "ready"
        app.state.engine.qa.index.backend.client.close()
        r = c.get("/ready")
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "backend_unreachable"
        asked = c.post("/ask", json={"question": "What is the capital of Norway?"})
        assert asked.status_code == 503
        assert value(parse(c.get("/metrics").text), "rag_ready") == 0
