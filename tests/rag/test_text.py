"""Shared text helpers (rag/text.py): the forms of irregular verbs, which the Snowball
stemmer keeps apart; acronyms and their spelled-out names."""

from __future__ import annotations

import pytest

from rag.answering.features import coverage
from rag.text import acronyms, forms, spelled_out, tokenize


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("write", {"write", "wrote", "written"}),
        ("told", {"tell", "told"}),
        ("said", {"say", "said"}),
        # A regular verb, or no verb: its own stem only.
        ("protests", {"protest"}),
        ("Telegram", {"telegram"}),
    ],
)
def test_forms(word: str, expected: set[str]) -> None:
    assert forms(tokenize(word)[0]) == expected


class Flat:
    """Every term of IDF 1: coverage is then the share of terms found."""

    def top_idf(self) -> float:
        return 1.0

    def term_idf(self, term: str) -> float:
        return 1.0


def test_coverage_finds_a_question_verb_in_its_irregular_form() -> None:
    terms = tokenize("Which platform did Markov write on?")
    present = frozenset(tokenize("Markov wrote on Telegram."))
    # "markov", and "write" as "wrote"; "which", "platform" and "did" are not there.
    assert terms == ["which", "platform", "did", "markov", "write"]
    found = {t for t in terms if forms(t) & present}
    assert found == {"markov", "write"}
    assert coverage(Flat(), terms, present) == pytest.approx(len(found) / len(set(terms)))


def test_acronyms_by_their_term() -> None:
    assert acronyms("What did the SCO and the CSTO say in May?") == {"sco": "SCO", "csto": "CSTO"}


@pytest.mark.parametrize(
    ("acronym", "text", "spelled"),
    [
        ("SCO", "platforms such as the Shanghai Cooperation Organization, where", True),
        ("CSTO", "the Collective Security Treaty Organization (CSTO)", True),
        # Small words between the initials are skipped.
        ("USA", "the United States of America said", True),
        # Lower-case words, or initials out of order, spell nothing.
        ("SCO", "a shanghai cooperation organization", False),
        ("SCO", "the Cooperation Shanghai Organization", False),
    ],
)
def test_spelled_out(acronym: str, text: str, spelled: bool) -> None:
    assert spelled_out(acronym, text) is spelled
