"""Engine: micro-batching shares forward passes, and one failing question fails alone."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from api.engine import Engine
from api.settings import Settings
from rag.pipeline import QA

pytestmark = pytest.mark.slow


class _Flaky(QA):
    """The real pipeline, except that one question raises, as a bug would."""

    def __init__(self, qa: QA) -> None:
        super().__init__(qa.index, qa.embedder)

    def answer(self, question, encoded, *args, **kwargs):
        if question == "explode":
            raise RuntimeError("boom")
        return super().answer(question, encoded, *args, **kwargs)


def test_concurrent_questions_share_batches_and_failures_stay_isolated(
    qa: QA, seed_index_dir: Path
) -> None:
    settings = Settings(index_dir=seed_index_dir, reload_interval=0, batch_wait_ms=20)
    questions = [
        "Who is Nikita Smagin?",
        "explode",
        "Where does Irina live?",
        "Who is Boris Bondarev?",
    ]

    async def run() -> tuple[list, Engine]:
        engine = Engine(_Flaky(qa), settings)
        await engine.start()
        try:
            outcomes = await asyncio.gather(
                *(engine.ask(q, 5) for q in questions), return_exceptions=True
            )
        finally:
            await engine.stop()
        return outcomes, engine

    outcomes, engine = asyncio.run(run())
    assert isinstance(outcomes[1], RuntimeError)
    for question, outcome in zip(questions, outcomes, strict=True):
        if question != "explode":
            assert outcome == qa.ask(question)
    # Four requests arrived together: fewer forward passes than questions.
    assert engine.batches < len(questions)


class _GatedRanking(QA):
    """The real pipeline, recording forward passes and where each question is ranked;
    ranking "Who is Nikita Smagin?" waits for a gate."""

    def __init__(self, qa: QA, gate: threading.Event) -> None:
        super().__init__(qa.index, qa.embedder)
        self.gate = gate
        self.encoded: list[str] = []
        self.ranked_on: dict[str, str] = {}

    def encode(self, questions):
        out = super().encode(questions)
        self.encoded.extend(questions)
        return out

    def answer(self, question, encoded, *args, **kwargs):
        self.ranked_on[question] = threading.current_thread().name.rsplit("_", 1)[0]
        if question == "Who is Nikita Smagin?":
            assert self.gate.wait(30), "the test never opened the gate"
        return super().answer(question, encoded, *args, **kwargs)


async def _until(condition, seconds: float = 20) -> bool:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return True
        await asyncio.sleep(0.01)
    return False


def test_forward_pass_overlaps_ranking_and_the_pipeline_is_bounded(
    qa: QA, seed_index_dir: Path
) -> None:
    """While one batch is being ranked, the next is encoded; a third waits for a free
    stage instead of piling up between the queue and the answers. A lone question is
    ranked on the model thread, with no hand-off."""
    settings = Settings(index_dir=seed_index_dir, reload_interval=0, batch_wait_ms=0)
    lone, first, companion, second, third = (
        "When did the protests begin?",
        "Who is Nikita Smagin?",
        "Where does Irina live?",
        "Who is Boris Bondarev?",
        "What did Putin say?",
    )
    gate = threading.Event()
    gated = _GatedRanking(qa, gate)

    async def run() -> list:
        engine = Engine(gated, settings)
        await engine.start()
        try:
            alone = await engine.ask(lone, 5)
            # Two questions queued together: one batch, ranked on the ranking thread.
            tasks = [asyncio.create_task(engine.ask(q, 5)) for q in (first, companion)]
            assert await _until(lambda: gated.encoded == [lone, first, companion])
            tasks.append(asyncio.create_task(engine.ask(second, 5)))
            # Encoded while the first batch is still held in ranking.
            assert await _until(lambda: gated.encoded[-1] == second)
            tasks.append(asyncio.create_task(engine.ask(third, 5)))
            assert not await _until(lambda: third in gated.encoded, seconds=0.5)
            assert not any(t.done() for t in tasks)
            gate.set()
            return [alone, *await asyncio.gather(*tasks)]
        finally:
            gate.set()
            await engine.stop()

    results = asyncio.run(run())
    assert gated.encoded == [lone, first, companion, second, third]
    assert results == [qa.ask(q) for q in (lone, first, companion, second, third)]
    # (Where the third is ranked depends on whether the second's ranking is over.)
    del gated.ranked_on[third]
    assert gated.ranked_on == {
        lone: "rag-model",
        first: "rag-rank",
        companion: "rag-rank",
        second: "rag-rank",
    }
