"""Sparse side: BM25 (bm25s) over stemmed, stopword-free tokens.

`tokenize` is the one tokenizer for documents and questions alike.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

_WORD = re.compile(r"\w+", re.UNICODE)
# bm25s sets its own logger to DEBUG on import; its progress chatter is not ours to show.
logging.getLogger("bm25s").setLevel(logging.WARNING)


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    return frozenset(bm25s.stopwords.STOPWORDS_EN)


def tokenize(text: str) -> list[str]:
    """Lower-cased, stopword-free, Snowball-stemmed word tokens."""
    stop = _stopwords()
    words = [
        w
        for w in _WORD.findall(text.lower().replace("’", "'"))
        if w not in stop and (len(w) > 1 or w.isdigit())
    ]
    return _stemmer().stemWords(words)


class SparseIndex:
    """BM25 over token lists; `scores` gives every document's score for a question."""

    def __init__(self, model: bm25s.BM25) -> None:
        self.model = model

    @classmethod
    def build(cls, texts: list[str]) -> SparseIndex:
        model = bm25s.BM25()
        model.index([tokenize(t) for t in texts], show_progress=False)
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
