"""BM25 (rag/index/sparse.py): built from streamed texts as term ids, it scores exactly as
bm25s does from lists of term strings, and its idf is the textbook one."""

from __future__ import annotations

import math

import bm25s
import numpy as np

from rag.index.sparse import SparseIndex
from rag.text import tokenize

TEXTS = [
    "Russia sells gas to Iran and oil to China.",
    "Iran's protests spread to Tehran; Russia said nothing.",
    "Tehran and Moscow signed a treaty.",
    "Gas prices rose in Moscow.",
]


def test_scores_from_streamed_ids_equal_bm25s_from_strings() -> None:
    ours = SparseIndex.build(t for t in TEXTS)  # a generator: read once
    reference = bm25s.BM25()
    reference.index([tokenize(t) for t in TEXTS], show_progress=False)
    for question in ["gas Russia", "Tehran protests", "treaty Moscow Moscow", "oil"]:
        terms = tokenize(question)
        assert np.array_equal(ours.scores(terms), reference.get_scores(terms)), question


def test_terms_are_numbered_by_first_appearance() -> None:
    index = SparseIndex.build(TEXTS[:1])
    first = tokenize(TEXTS[0])
    assert [index.model.vocab_dict[t] for t in dict.fromkeys(first)] == list(range(len(set(first))))


def test_idf_by_hand() -> None:
    index = SparseIndex.build(TEXTS)
    assert index.size == 4
    # "moscow" is in 2 of the 4 texts, "treaty" (stemmed "treati") in 1; an unknown
    # term has none.
    assert tokenize("treaty") == ["treati"]
    assert math.isclose(index.idf("moscow"), math.log(1 + (4 - 2 + 0.5) / (2 + 0.5)))
    assert math.isclose(index.idf("treati"), math.log(1 + (4 - 1 + 0.5) / (1 + 0.5)))
    assert index.idf("kazakhstan") == 0.0
