"""Sparse side: BM25 (bm25s) over the terms of `rag.text.tokenize`."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import bm25s
import numpy as np

from rag.text import tokenize

# bm25s sets its own logger to DEBUG on import; its progress chatter is not ours to show.
logging.getLogger("bm25s").setLevel(logging.WARNING)


class SparseIndex:
    """BM25 over token lists; `scores` gives every document's score for a question."""

    def __init__(self, model: bm25s.BM25) -> None:
        self.model = model

    @classmethod
    def build(cls, texts: Iterable[str]) -> SparseIndex:
        """BM25 of `texts`, read once (a generator streaming them from disk will do).
        Each text is kept as term ids, numbered by first appearance, not as a list of
        strings: bm25s needs every document's terms at once, and ids take a fraction
        of the memory (the scores are the same as from the strings)."""
        vocabulary: dict[str, int] = {}
        ids = [
            [vocabulary.setdefault(t, len(vocabulary)) for t in tokenize(text)] for text in texts
        ]
        model = bm25s.BM25()
        model.index((ids, vocabulary), show_progress=False)
        return cls(model)

    def scores(self, terms: list[str]) -> np.ndarray:
        """BM25 of every document for already tokenized terms (see `tokenize`)."""
        tokens = [t for t in terms if t in self.model.vocab_dict]
        if not tokens:
            return np.zeros(self.size, dtype=np.float32)
        return self.model.get_scores(tokens)

    def idf(self, token: str) -> float:
        """BM25 idf of a token, 0 for tokens the corpus lacks."""
        tid = self.model.vocab_dict.get(token)
        if tid is None:
            return 0.0
        df = int(self.model.scores["indptr"][tid + 1] - self.model.scores["indptr"][tid])
        n = self.size
        return float(np.log(1 + (n - df + 0.5) / (df + 0.5)))

    @property
    def size(self) -> int:
        return int(self.model.scores["num_docs"])

    def save(self, path: Path) -> None:
        self.model.save(str(path), show_progress=False)

    @classmethod
    def load(cls, path: Path) -> SparseIndex:
        return cls(bm25s.BM25.load(str(path), show_progress=False))
