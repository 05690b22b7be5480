"""Sentence features that decide abstention (rag/answering/features.py): a name the
corpus lacks, a name the answer's article lacks. Exact values on a hand-made corpus."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from rag.answering import features as F
from rag.chunker import Chunk
from rag.config import AnswererConfig
from rag.text import tokenize
from tests.rag.answering.questions import ask

DOCS = {
    "iran.txt": (
        "The US warned Iran. Russia sold S-400 systems to Tehran in 2021. "
        "Iran's oil was at stake after World War II. Iran International reported it. "
        "The Shanghai Cooperation Organization met."
    ),
    "china.txt": "China buys most of Iran's oil exports.",
}


@dataclass
class Corpus:
    """The slice of IndexView these features read: one chunk per document."""

    def chunk(self, cid: int) -> Chunk:
        source = sorted(DOCS)[cid]
        return Chunk(source, 1, 0, len(DOCS[source]), DOCS[source], 0)

    def text(self, source: str) -> str:
        return DOCS[source]

    def document_terms(self, source: str) -> frozenset[str]:
        return frozenset(tokenize(DOCS[source]))

    def term_idf(self, term: str) -> float:
        return 1.0 if any(term in self.document_terms(s) for s in DOCS) else 0.0


def values(question: str, cid: int) -> dict[str, float]:
    q = ask(question)
    c = F.Candidate(cid, 0, 0, 10, 0, 0.5, 0.5, 0.5, 0.5, 0.5, frozenset())
    context = F.Context(Corpus(), q, AnswererConfig())  # type: ignore[arg-type]
    return {
        "key_absent": F._key_absent(c, context),
        "subject_missing": F._subject_missing(c, context),
    }


@pytest.mark.parametrize(
    ("question", "cid", "key_absent", "subject_missing"),
    [
        # Gazprom is in no document: nothing can answer.
        ("How much gas does Gazprom sell to Iran?", 1, 1.0, 1.0),
        # China is in the corpus, but not in the article about Iran (cid 1).
        ("What did China's foreign minister say about Iran?", 1, 0.0, 1.0),
        ("What did China's foreign minister say about Iran?", 0, 0.0, 0.0),
        # "United States" is written "US": an alias, not a missing name, in the article
        # and in the corpus.
        ("What did the United States tell Iran?", 1, 0.0, 0.0),
        # A name counts as absent when its last term is: a modifier is often written
        # another way ("World War II"), a first name dropped ("Zakharova").
        ("What did Russia want after the Second World War?", 1, 0.0, 0.0),
        ("What did Maria Tehran say?", 1, 0.0, 0.0),
        ("What did Russia sell to Tehran Gas?", 1, 1.0, 1.0),
        # The article must hold a name's head: "Tehran" is in it, "Times" is not.
        ("What did the Tehran Times report about Iran?", 1, 1.0, 1.0),
        # A generic last word needs the word before it, in the corpus and in the
        # article: "Amnesty" is in neither, "International" would not have been enough
        # ("Iran International" is).
        ("What did Amnesty International report about Iran?", 1, 1.0, 1.0),
        ("What did Iran International report?", 1, 0.0, 0.0),
        # An acronym the article writes out is there ("SCO" in iran.txt), in the corpus
        # too; one written out nowhere is absent.
        ("What did the SCO say about Iran?", 1, 0.0, 0.0),
        ("What did the SCO say about Iran?", 0, 1.0, 1.0),
        # A name of two letters is its own head ("EU" is in no document); the
        # article-wide check leaves such names out (subject_missing).
        ("What did the EU tell Iran?", 1, 1.0, 0.0),
        # In the article, a longer form of a name counts ("Iranian" for "Iran"); the
        # corpus-wide check is exact: a form no chunk uses counts as absent.
        ("Which Iranian city was hit?", 1, 1.0, 0.0),
        # No name at all: neither rule applies.
        ("how many systems were sold?", 1, 0.0, 0.0),
    ],
)
def test_names_the_corpus_or_the_article_lacks(
    question: str, cid: int, key_absent: float, subject_missing: float
) -> None:
    assert values(question, cid) == {"key_absent": key_absent, "subject_missing": subject_missing}


@pytest.mark.parametrize(
    ("question", "cid", "missing"),
    [
        # A count is asked for; the Iran article has numbers, the China one none.
        ("How many systems did Russia sell?", 1, 0.0),
        ("How many barrels does China buy?", 0, 1.0),
        # A date: "2021" is one.
        ("When did Russia sell the systems?", 1, 0.0),
        # "how many" inside another question asks for no number.
        ("Why is it hard to know how many barrels China buys?", 0, 0.0),
        # A capital's name: "Tehran" is a place name the question does not hold.
        ("What is the capital of Iran?", 1, 0.0),
    ],
)
def test_type_missing(question: str, cid: int, missing: float) -> None:
    q = ask(question)
    chunk = Corpus().chunk(cid)
    c = F.Candidate(cid, 0, chunk.start, chunk.end, 0, 0.5, 0.5, 0.5, 0.5, 0.5, frozenset())
    context = F.Context(Corpus(), q, AnswererConfig())  # type: ignore[arg-type]
    assert F._type_missing(c, context) == missing


def test_every_feature_is_named_once_and_the_hand_weights_name_features() -> None:
    assert len(F.FEATURES) == len(set(F.FEATURES))
    assert set(AnswererConfig().weights) <= set(F.FEATURES)


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [
        # The mean of (1, 0) and (0, 1) is (0.5, 0.5): cosine with (1, 0) is 1/sqrt(2).
        ([[1.0, 0.0], [0.0, 1.0]], 0.5**0.5),
        # One token: its own cosine with the question.
        ([[0.6, 0.8]], 0.6),
        # Opposite tokens cancel out: no direction, no similarity (not a division by 0).
        ([[1.0, 0.0], [-1.0, 0.0]], 0.0),
        # A sentence without tokens.
        (np.zeros((0, 2)), 0.0),
    ],
)
def test_pooled_cosine(tokens: list[list[float]], expected: float) -> None:
    question = np.asarray([1.0, 0.0], dtype=np.float32)
    rows = np.asarray(tokens, dtype=np.float16)
    # float16 rows, as the token store keeps them: 0.6 is stored as 0.6001.
    assert F.pooled_cosine(question, rows) == pytest.approx(expected, abs=1e-3)
