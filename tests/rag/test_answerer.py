"""When a neighbour joins the chosen sentence (rag/answerer.py, `close_neighbour`, and
`short_follow`): exact decisions on hand-made rankings and text."""

from __future__ import annotations

import pytest

from rag.answerer import Key, close_neighbour, short_follow
from rag.answering.features import Candidate
from rag.chunker import Chunk


def cand(chunk_id: int, sentence: int) -> Candidate:
    return Candidate(chunk_id, sentence, 0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, frozenset())


def key(score: float, passes: bool = True, said: bool = False) -> Key:
    return (passes, said, False, score)


@pytest.mark.parametrize(
    ("ranked", "share", "expected"),
    [
        # The runner-up is the next sentence and scores 0.25 / 0.5 = 50% >= 40%.
        ([(key(0.5), cand(3, 2)), (key(0.25), cand(3, 3))], 0.4, 3),
        # ... or the sentence before.
        ([(key(0.5), cand(3, 2)), (key(0.25), cand(3, 1))], 0.4, 1),
        # Exactly the share joins: 0.2 / 0.5 = 40%.
        ([(key(0.5), cand(3, 2)), (key(0.2), cand(3, 1))], 0.4, 1),
        # Below the share: 0.19 / 0.5 = 38%.
        ([(key(0.5), cand(3, 2)), (key(0.19), cand(3, 1))], 0.4, None),
        # A stronger sentence elsewhere does not stop the neighbour after it.
        ([(key(0.5), cand(3, 2)), (key(0.45), cand(7, 0)), (key(0.3), cand(3, 3))], 0.4, 3),
        # Two sentences away is not a neighbour.
        ([(key(0.5), cand(3, 2)), (key(0.45), cand(3, 4))], 0.4, None),
        # The same sentence number in another passage is not a neighbour.
        ([(key(0.5), cand(3, 2)), (key(0.45), cand(4, 3))], 0.4, None),
        # The best neighbour decides: the weaker one on the other side is not looked at.
        ([(key(0.5), cand(3, 2)), (key(0.15), cand(3, 1)), (key(0.1), cand(3, 3))], 0.4, None),
        # A neighbour that fails a gate the chosen one passes does not join...
        ([(key(0.5), cand(3, 2)), (key(0.45, passes=False), cand(3, 3))], 0.4, None),
        # ... nor one that does not give the asked speaker's words when the chosen one does.
        ([(key(0.5, said=True), cand(3, 2)), (key(0.45), cand(3, 3))], 0.4, None),
        # Switched off, or nothing to compare with.
        ([(key(0.5), cand(3, 2)), (key(0.45), cand(3, 3))], 0.0, None),
        ([(key(0.5), cand(3, 2))], 0.4, None),
        ([], 0.4, None),
        # A score of zero or below (the hand-set sum can be) has no share to take.
        ([(key(0.0), cand(3, 2)), (key(0.0), cand(3, 3))], 0.4, None),
    ],
)
def test_close_neighbour(
    ranked: list[tuple[Key, Candidate]], share: float, expected: int | None
) -> None:
    assert close_neighbour(ranked, share) == expected


TEXT = "Bolshevik governments rose in Hungary and Bavaria. None endured. Others came later on."


class Text:
    """The slice of IndexView `short_follow` reads: a file's text."""

    def text(self, source: str) -> str:
        return TEXT


def sentence_spans() -> tuple[tuple[int, int], ...]:
    spans, start = [], 0
    for piece in (
        "Bolshevik governments rose in Hungary and Bavaria.",
        "None endured.",
        "Others came later on.",
    ):
        begin = TEXT.index(piece, start)
        spans.append((begin, begin + len(piece)))
        start = begin + len(piece)
    return tuple(spans)


@pytest.mark.parametrize(
    ("last", "words", "joins"),
    [
        # "None endured." (2 words) finishes the sentence before it.
        (0, 5, True),
        (0, 2, True),
        (0, 1, False),
        # "Others came later on." has 4 words.
        (1, 5, True),
        (1, 3, False),
        # Nothing after the last sentence; 0 switches the rule off.
        (2, 5, False),
        (0, 0, False),
    ],
)
def test_short_follow(last: int, words: int, joins: bool) -> None:
    chunk = Chunk("a.txt", 1, 0, len(TEXT), TEXT, 0, sentences=sentence_spans())
    assert short_follow(Text(), chunk, last, words) is joins  # type: ignore[arg-type]
