"""Engine: micro-batching shares forward passes, and one failing question fails alone."""

from __future__ import annotations

import asyncio
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

    def answer(self, question, encoded, top_k=5):
        if question == "explode":
            raise RuntimeError("boom")
        return super().answer(question, encoded, top_k)


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
