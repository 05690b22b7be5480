"""Engine limits and recovery, on the real pipeline with its forward pass held at a gate:
503 once RAG_QUEUE_MAX questions wait, batches capped at RAG_BATCH_MAX_SIZE, a failed
forward pass retried one question at a time, and a reload retried when the index
changes again while it loads."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.engine import Engine
from api.main import create_app
from api.settings import Settings
from rag.pipeline import QA

pytestmark = pytest.mark.slow

QUESTIONS = [
    "Who is Nikita Smagin?",
    "Where does Irina live?",
    "Who is Boris Bondarev?",
    "When did the protests in Iran begin?",
    "What did Putin say?",
]


class GatedEncode(QA):
    """The real pipeline; each forward pass is recorded and waits at a gate first."""

    def __init__(self, qa: QA) -> None:
        super().__init__(qa.index, qa.embedder)
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.batches: list[list[str]] = []

    def encode(self, questions):
        self.batches.append(list(questions))
        self.entered.set()
        assert self.gate.wait(60), "the test never opened the gate"
        return super().encode(questions)


class FailingEncode(QA):
    """The real pipeline, except that a forward pass holding "explode" raises, as a
    model error on one odd input would."""

    def __init__(self, qa: QA) -> None:
        super().__init__(qa.index, qa.embedder)
        self.batches: list[list[str]] = []

    def encode(self, questions):
        self.batches.append(list(questions))
        if "explode" in questions:
            raise RuntimeError("forward pass failed")
        return super().encode(questions)


def until(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition never met"
        time.sleep(0.01)


def test_queue_max_from_the_environment_then_503(
    qa: QA, seed_index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One question in the forward pass, RAG_QUEUE_MAX waiting: the next gets 503 with
    Retry-After, and every accepted question is still answered, as if asked alone."""
    monkeypatch.setenv("RAG_QUEUE_MAX", "2")
    monkeypatch.setenv("RAG_BATCH_MAX_SIZE", "1")
    settings = Settings(index_dir=seed_index_dir, reload_interval=0)
    assert (settings.queue_max, settings.batch_max_size) == (2, 1)
    gated = GatedEncode(qa)
    app = create_app(settings, qa=gated)
    with TestClient(app) as client, ThreadPoolExecutor(4) as pool:
        engine: Engine = app.state.engine
        ask = lambda q: client.post("/ask", json={"question": q})  # noqa: E731
        try:
            futures = [pool.submit(ask, QUESTIONS[0])]
            assert gated.entered.wait(30)  # the first is in the forward pass
            futures += [pool.submit(ask, q) for q in QUESTIONS[1:3]]
            until(lambda: engine._queue is not None and engine._queue.qsize() == 2)
            # Refused at once, not queued: it returns while the gate is still shut.
            refused = pool.submit(ask, QUESTIONS[3]).result(timeout=30)
        finally:
            gated.gate.set()
        answers = [f.result(timeout=120) for f in futures]
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "overloaded"
    assert refused.headers["retry-after"] == "1"
    assert [r.status_code for r in answers] == [200, 200, 200]
    for question, response in zip(QUESTIONS[:3], answers, strict=True):
        assert response.json() == qa.ask(question).to_dict()
    # One question a pass; the two queued ones were sent together, in either order; the
    # refused one never ran.
    assert gated.batches[0] == [QUESTIONS[0]]
    assert sorted(gated.batches[1:]) == sorted([q] for q in QUESTIONS[1:3])


def test_batches_are_capped_at_batch_max_size(qa: QA, seed_index_dir: Path) -> None:
    settings = Settings(
        index_dir=seed_index_dir, reload_interval=0, batch_max_size=2, batch_wait_ms=50
    )
    gated = GatedEncode(qa)

    async def run() -> list:
        engine = Engine(gated, settings)
        await engine.start()
        try:
            # The first question holds the model; four more queue behind it.
            first = asyncio.create_task(engine.ask("Who is Vladimir Putin?", 5))
            await asyncio.to_thread(gated.entered.wait, 30)
            rest = [asyncio.create_task(engine.ask(q, 5)) for q in QUESTIONS]
            await asyncio.sleep(0.2)
            assert engine._queue is not None and engine._queue.qsize() == len(QUESTIONS)
            gated.gate.set()
            return await asyncio.gather(first, *rest)
        finally:
            gated.gate.set()
            await engine.stop()

    results = asyncio.run(run())
    assert gated.batches == [
        ["Who is Vladimir Putin?"],
        QUESTIONS[0:2],
        QUESTIONS[2:4],
        QUESTIONS[4:5],
    ]
    assert results == [qa.ask(q) for q in ["Who is Vladimir Putin?", *QUESTIONS]]


def test_failed_forward_pass_is_retried_one_question_at_a_time(
    qa: QA, seed_index_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The encode step fails for the whole batch; each question is then encoded alone,
    so only the one that breaks the model fails."""
    settings = Settings(index_dir=seed_index_dir, reload_interval=0, batch_wait_ms=200)
    failing = FailingEncode(qa)
    asked = [QUESTIONS[0], "explode", QUESTIONS[1]]

    async def run() -> list:
        engine = Engine(failing, settings)
        await engine.start()
        try:
            return await asyncio.gather(*(engine.ask(q, 5) for q in asked), return_exceptions=True)
        finally:
            await engine.stop()

    with caplog.at_level(logging.ERROR, logger="api.engine"):
        outcomes = asyncio.run(run())
    assert failing.batches == [asked, [asked[0]], ["explode"], [asked[2]]]
    assert isinstance(outcomes[1], RuntimeError) and str(outcomes[1]) == "forward pass failed"
    assert outcomes[0] == qa.ask(asked[0])
    assert outcomes[2] == qa.ask(asked[2])
    assert "a batch of 3 failed; encoding its questions one by one" in caplog.text


def test_a_lone_question_whose_forward_pass_fails_gets_the_error(
    qa: QA, seed_index_dir: Path
) -> None:
    settings = Settings(index_dir=seed_index_dir, reload_interval=0)
    failing = FailingEncode(qa)

    async def run() -> object:
        engine = Engine(failing, settings)
        await engine.start()
        try:
            return await asyncio.gather(engine.ask("explode", 5), return_exceptions=True)
        finally:
            await engine.stop()

    (outcome,) = asyncio.run(run())
    assert isinstance(outcome, RuntimeError)
    assert failing.batches == [["explode"]]  # no pointless retry of a batch of one


def _set_build_id(index: Path, build_id: str) -> None:
    manifest = json.loads((index / "manifest.json").read_text())
    manifest["build_id"] = build_id
    (index / "manifest.json").write_text(json.dumps(manifest))


def test_reload_is_retried_when_the_index_changes_while_it_loads(
    qa: QA, seed_index_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A load that fails because another build was swapped in meanwhile is no damaged
    index: nothing is counted or remembered as failed, and the next poll loads the
    newer build."""
    index = tmp_path / "index"
    shutil.copytree(seed_index_dir, index)
    served = QA.load(index, embedder=qa.embedder)
    first = json.loads((index / "manifest.json").read_text())["build_id"]
    settings = Settings(index_dir=index, reload_interval=0)
    engine = Engine(served, settings)
    load = engine._load
    attempts: list[str] = []

    def load_while_a_build_lands(current: QA | None) -> QA:
        attempts.append(json.loads((index / "manifest.json").read_text())["build_id"])
        if len(attempts) == 1:
            # Another build lands in the middle of this load, which then fails on files
            # that changed under it.
            _set_build_id(index, "c" * 32)
            raise OSError("dense.faiss changed while it was read")
        return load(current)

    engine._load = load_while_a_build_lands  # type: ignore[method-assign]
    _set_build_id(index, "b" * 32)

    async def run() -> tuple[bool, bool]:
        return await engine.reload(), await engine.reload()

    with caplog.at_level(logging.WARNING, logger="api.engine"):
        retried, loaded = asyncio.run(run())
    assert first not in ("b" * 32, "c" * 32)
    assert attempts == ["b" * 32, "c" * 32]
    assert (retried, loaded) == (False, True)
    assert engine.build_id == "c" * 32
    assert engine._failed_build is None and engine.readiness() is None
    assert "index changed again while loading; retrying" in caplog.text
    assert "cannot be loaded" not in caplog.text
    failures = engine.metrics.reloads.labels("failure")._value.get()
    assert failures == 0


def test_a_build_that_fails_to_load_is_not_retried_until_a_new_one(
    qa: QA, seed_index_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The other side of the retry: when the manifest did not change, the build is
    remembered as failed and not loaded again at every poll."""
    index = tmp_path / "index"
    shutil.copytree(seed_index_dir, index)
    engine = Engine(
        QA.load(index, embedder=qa.embedder), Settings(index_dir=index, reload_interval=0)
    )
    first = engine.build_id
    attempts = []

    def broken(current: QA | None) -> QA:
        attempts.append(1)
        raise OSError("dense.faiss is damaged")

    engine._load = broken  # type: ignore[method-assign]
    _set_build_id(index, "d" * 32)

    async def run() -> tuple[bool, bool]:
        return await engine.reload(), await engine.reload()

    with caplog.at_level(logging.WARNING, logger="api.engine"):
        assert asyncio.run(run()) == (False, False)
    assert attempts == [1]
    assert engine._failed_build == "d" * 32 and engine.build_id == first
    assert "cannot be loaded, keeping the current one" in caplog.text
