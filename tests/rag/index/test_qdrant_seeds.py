"""The seeds through the Qdrant backend (embedded local mode, the real model): the
question set scores within 0.02 of the local backend, a build killed with kill -9 in
the middle of its upsert leaves the old alias and manifest serving, a rebuild re-embeds
only what changed, a real server restricts answers to the `sources` asked for, and a
lost connection to Qdrant is a 503.

Embedded mode is a Python implementation and slow (about 30 ms a point to write), so the
question set is a spread of it (QUESTIONS); `scripts/evaluate.py --index DIR` over an
index built with `rag index --backend qdrant` runs all of it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from qdrant_client import QdrantClient

from rag.config import IndexConfig, PipelineConfig
from rag.embedder import Embedder
from rag.evaluation.formats import load_questions, spread
from rag.evaluation.metrics import summarize
from rag.evaluation.runner import LibraryTarget, run_questions
from rag.index import build_index
from rag.index.manifest import Manifest
from rag.pipeline import QA
from scripts.harness import serve

ROOT = Path(__file__).resolve().parents[3]
SEEDS = ROOT / "seeds"
QUESTION_SET = ROOT / "scripts" / "questions" / "seeds.jsonl"
QUESTIONS = 80
QDRANT = PipelineConfig(index=IndexConfig(backend="qdrant"))

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def qdrant_index(
    clean_env: None, tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
) -> Path:
    out = tmp_path_factory.mktemp("qdrant-seeds") / "index"
    build_index(SEEDS, out, QDRANT, embedder=embedder)
    return out


def _figures(qa: QA, questions: list) -> dict:
    records = run_questions(questions, LibraryTarget(qa), top_k=10, progress=False)
    return summarize([r.outcome for r in records]) | {
        "answers": [r.result["answer"] if r.result else None for r in records]
    }


def test_question_set_through_qdrant_within_002_of_local(
    qdrant_index: Path, qa: QA, embedder: Embedder
) -> None:
    manifest = Manifest.load(qdrant_index)
    assert manifest.backend.kind == "qdrant"
    assert manifest.backend.settings["location"] == "embedded"
    questions = spread(load_questions(QUESTION_SET), QUESTIONS)
    local = _figures(qa, questions)
    through_qdrant = QA.load(qdrant_index, embedder=embedder)
    try:
        remote = _figures(through_qdrant, questions)
    finally:
        through_qdrant.index.close()
    assert remote["errors"] == 0 and remote["verbatim"] == 1.0
    for figure in ("hit@1", "answer_match"):
        assert abs(remote[figure] - local[figure]) <= 0.02, (figure, remote, local)
    # Not two broken runs agreeing: the local figures are the README's, about.
    assert local["hit@1"] >= 0.75 and local["answer_match"] >= 0.7
    same = sum(a == b for a, b in zip(local["answers"], remote["answers"], strict=True))
    assert same >= 0.98 * len(questions)


def _store_size(staging: list[Path]) -> int:
    return sum(p.stat().st_size for s in staging for p in s.glob("qdrant/collection/*/*.sqlite"))


def test_kill_9_during_the_upsert_leaves_the_old_alias_serving(
    qdrant_index: Path, embedder: Embedder, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    changed = sorted(corpus.glob("*.txt"))[0]
    changed.write_text(
        changed.read_text(encoding="utf-8") + "\nA new closing paragraph, added for the rebuild.\n",
        encoding="utf-8",
    )
    out = tmp_path / "index"
    shutil.copytree(qdrant_index, out)
    before = Manifest.load(out)
    question = "Who is Nikita Smagin?"
    qa_before = QA.load(out, embedder=embedder)
    answer = qa_before.ask(question).to_dict()
    qa_before.index.close()
    full_size = sum(p.stat().st_size for p in out.glob("qdrant/collection/*/*.sqlite"))

    build = subprocess.Popen(
        [sys.executable, "-m", "rag", "index", "--corpus", str(corpus), "--out", str(out),
         "--backend", "qdrant"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "RAG_LOG_FORMAT": "text"},
    )  # fmt: skip
    deadline = time.monotonic() + 300
    killed_at = 0
    try:
        while time.monotonic() < deadline and build.poll() is None:
            staging = list(tmp_path.glob(".index.tmp-*"))
            size = _store_size(staging)
            # Points are being written into the new collection: a tenth of them, say.
            if size > full_size // 10:
                build.send_signal(signal.SIGKILL)
                killed_at = size
                break
            time.sleep(0.05)
    finally:
        if build.poll() is None:
            build.kill()
        stderr = build.communicate()[1]
    assert killed_at, f"the build ended before its upsert was seen: {stderr[-2000:]}"
    assert build.returncode == -signal.SIGKILL
    assert killed_at < full_size  # killed mid-upsert, not after

    # The old manifest, the old collection behind the alias, the same answers.
    after = Manifest.load(out)
    assert after.build_id == before.build_id
    client = QdrantClient(path=str(out / "qdrant"))
    try:
        aliases = {a.alias_name: a.collection_name for a in client.get_aliases().aliases}
        assert aliases == {"rag": before.backend.settings["collection"]}
        assert client.count("rag").count == before.counts.chunks
    finally:
        client.close()
    qa_after = QA.load(out, embedder=embedder)
    try:
        assert qa_after.ask(question).to_dict() == answer
    finally:
        qa_after.index.close()

    # Building again completes, re-embeds only the changed text, moves the alias.
    report = build_index(corpus, out, QDRANT, embedder=embedder)
    assert 1 <= report.embedded <= 3 and report.reused == report.chunks - report.embedded
    rebuilt = Manifest.load(out)
    assert rebuilt.build_id != before.build_id
    assert rebuilt.counts.chunks == before.counts.chunks + 1
    client = QdrantClient(path=str(out / "qdrant"))
    try:
        aliases = {a.alias_name: a.collection_name for a in client.get_aliases().aliases}
        assert aliases == {"rag": rebuilt.backend.settings["collection"]}
        assert [c.name for c in client.get_collections().collections] == [aliases["rag"]]
    finally:
        client.close()


def test_a_real_server_on_qdrant_filters_sources_and_reloads_a_new_build(
    qdrant_index: Path, embedder: Embedder, tmp_path: Path
) -> None:
    """Through `rag serve`: `sources` restricts citations and answer; then a build runs
    while the server holds the embedded store (the build reads a copy of it for its
    embedding cache), and the server swaps the new build in without failing a request."""
    question = "Who is Nikita Smagin?"
    only = "001_77e29c8a411f06ba.txt"
    index = tmp_path / "index"
    shutil.copytree(qdrant_index, index)
    # Start-up opens the embedded store (every point unpickled): slow on a loaded machine.
    with serve(index, tmp_path, env={"RAG_RELOAD_INTERVAL": "0.3"}, timeout=240) as server:
        health = httpx.get(f"{server.url}/health", timeout=10).json()
        assert health["counts"]["chunks"] == Manifest.load(qdrant_index).counts.chunks
        everywhere = httpx.post(
            f"{server.url}/ask", json={"question": question, "top_k": 10}, timeout=60
        ).json()
        assert {c["source"] for c in everywhere["citations"]} - {only}  # other files answer too
        body = {"question": question, "top_k": 10, "sources": [only]}
        filtered = httpx.post(f"{server.url}/ask", json=body, timeout=60)
        assert filtered.status_code == 200, filtered.text
        result = filtered.json()
        assert result["citations"] and {c["source"] for c in result["citations"]} == {only}
        if result["answer"] is not None:
            assert result["answer_source"]["source"] == only
        unknown = httpx.post(
            f"{server.url}/ask", json={**body, "sources": [only, "nope.txt"]}, timeout=60
        )
        assert unknown.status_code == 422
        assert "'nope.txt'" in unknown.json()["error"]["message"]

        corpus = tmp_path / "corpus"
        shutil.copytree(SEEDS, corpus)
        with (corpus / only).open("a", encoding="utf-8") as fh:
            fh.write("\nA reload check: the lighthouse keeper counted 4,181 gulls.\n")
        report = build_index(corpus, index, QDRANT, embedder=embedder)
        assert report.embedded == 1 and report.reused == report.chunks - 1
        new_id = Manifest.load(index).build_id
        statuses = []
        deadline = time.monotonic() + 60
        while httpx.get(f"{server.url}/health", timeout=10).json()["build_id"] != new_id:
            assert time.monotonic() < deadline, server.log()[-2000:]
            asked = httpx.post(f"{server.url}/ask", json={"question": question}, timeout=60)
            statuses.append(asked.status_code)
        assert set(statuses) <= {200}
        answer = httpx.post(
            f"{server.url}/ask",
            json={"question": "How many gulls did the keeper count?"},
            timeout=60,
        ).json()
        assert "4,181" in answer["citations"][0]["text"]


def test_qdrant_unavailable_at_request_time_is_a_503(
    qdrant_index: Path, embedder: Embedder
) -> None:
    from fastapi.testclient import TestClient

    from api.main import create_app
    from api.settings import Settings

    qa = QA.load(qdrant_index, embedder=embedder)
    try:
        app = create_app(Settings(index_dir=qdrant_index, reload_interval=0), qa=qa)
        with TestClient(app) as client:
            assert (
                client.post("/ask", json={"question": "Who is Nikita Smagin?"}).status_code == 200
            )
            qa.index.backend.client.close()  # the connection to Qdrant is gone
            response = client.post("/ask", json={"question": "When did the protests begin?"})
            assert response.status_code == 503
            error = response.json()["error"]
            assert error["code"] == "index_unavailable"
            assert "Qdrant at" in error["message"] and "does not answer" in error["message"]
    finally:
        qa.index.close()
