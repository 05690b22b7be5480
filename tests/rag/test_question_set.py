"""The seeds question set is what the system is tuned against, so its gold must be right:
every gold paragraph, numbered exactly as the chunker numbers it, is a body paragraph
that contains one of the question's expected phrases."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from rag.chunker import Paragraph, split_paragraphs
from rag.config import ChunkerConfig
from rag.corpus import read_corpus
from rag.evaluation import formats
from rag.evaluation.metrics import phrase_match
from tests.servers import ROOT

SEEDS = ROOT / "seeds"
QUESTIONS = ROOT / "scripts" / "questions" / "seeds.jsonl"
KINDS = {"fact", "paraphrase", "multi", "context", "speaker", "quote"} | set(
    formats.UNANSWERABLE_KINDS
)


@pytest.fixture(scope="module")
def questions() -> list[formats.Question]:
    return formats.load_questions(QUESTIONS)


@pytest.fixture(scope="module")
def paragraphs() -> dict[str, tuple[str, list[Paragraph]]]:
    """Each seed file's text and its paragraphs, from the real chunker."""
    config = ChunkerConfig()
    return {d.source: (d.text, split_paragraphs(d, config)) for d in read_corpus(SEEDS)}


def test_every_line_is_valid() -> None:
    # load_questions raises on the first problem too; this lists all of them at once.
    problems = []
    for number, line in enumerate(QUESTIONS.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            problems += [
                f"line {number}: {p}" for p in formats.problems(json.loads(line), strict=True)
            ]
    assert problems == []


def test_size_and_mix(questions: list[formats.Question]) -> None:
    kinds = Counter(q.kind for q in questions)
    assert len(questions) >= 80
    assert kinds["paraphrase"] >= 20
    assert kinds["unanswerable"] + kinds["near-topic"] >= 15
    assert set(kinds) <= KINDS, f"unknown kinds {set(kinds) - KINDS}"
    # Questions whose answer appears in several articles.
    assert sum(len({s for s, _ in q.gold}) > 1 for q in questions) >= 5


def test_ids_and_questions_are_unique(questions: list[formats.Question]) -> None:
    ids = Counter(q.id for q in questions)
    texts = Counter(q.question.strip().lower() for q in questions)
    assert [i for i, n in ids.items() if n > 1] == []
    assert [t for t, n in texts.items() if n > 1] == []


def test_gold_paragraphs_exist_are_body_and_contain_an_expected_phrase(
    questions: list[formats.Question], paragraphs: dict[str, tuple[str, list[Paragraph]]]
) -> None:
    wrong = []
    for q in questions:
        for source, number in q.gold:
            if source not in paragraphs:
                wrong.append(f"{q.id}: no seed file {source}")
                continue
            text, paras = paragraphs[source]
            if not 1 <= number <= len(paras):
                wrong.append(f"{q.id}: {source} has {len(paras)} paragraphs, not {number}")
                continue
            para = paras[number - 1]
            body = text[para.start : para.end]
            if para.kind != "body":
                wrong.append(f"{q.id}: {source} ¶{number} is a {para.kind}: {body[:60]!r}")
            if not phrase_match(body, q.answer_any):
                wrong.append(f"{q.id}: {source} ¶{number} lacks all of {q.answer_any}")
    assert wrong == []
