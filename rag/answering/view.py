"""The answerer's one window onto the index: every piece of data it reads goes through
`IndexView`, so that a different search backend only has to re-point these methods.

What the answerer needs: a chunk's record (offsets, sentences, paragraph), its contextual
token embeddings with their spans, the word-piece IDF of the question's tokens, the BM25
IDF of a term (0 when the corpus lacks it), a document's text, and memoised facts about
spans (their BM25 terms, whether they hold an answer-type pattern).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from rag.chunker import Chunk
from rag.index import Index


@dataclass(frozen=True)
class IndexView:
    index: Index

    def chunk(self, cid: int) -> Chunk:
        return self.index.chunk(cid)

    def token_block(self, cid: int) -> tuple[np.ndarray, np.ndarray]:
        """(token embeddings, their character spans in the chunk's embedded text)."""
        record = self.index.record(cid, tokens=True)
        assert record.tokens is not None and record.token_spans is not None
        return record.tokens, record.token_spans

    def token_weights(self, token_ids: np.ndarray) -> np.ndarray:
        """IDF of word pieces over the chunks: rare pieces weigh most."""
        return self.index.stats.piece_idf(token_ids)

    def term_idf(self, term: str) -> float:
        """BM25 IDF of a term; 0 when no chunk holds it."""
        return self.index.stats.term_idf(term)

    def top_idf(self) -> float:
        """The IDF a term held by no chunk would get (the highest possible)."""
        n = self.index.stats.chunks
        return math.log(1 + (n + 0.5) / 0.5)

    def text(self, source: str) -> str:
        return self.index.documents[source].text

    def span_terms(self, source: str, start: int, end: int) -> frozenset[str]:
        return self.index.span_terms(source, start, end)

    def span_holds(self, pattern: re.Pattern[str], source: str, start: int, end: int) -> bool:
        return self.index.span_holds(pattern, source, start, end)

    def document_terms(self, source: str) -> frozenset[str]:
        """BM25 terms of a whole file (memoised by the index like any span's)."""
        return self.index.span_terms(source, 0, len(self.text(source)))

    def previous_chunk(self, cid: int) -> int | None:
        """The chunk just before `cid` in its file (the earlier piece of its paragraph or
        the last piece of the body paragraph before), None at the top of the file."""
        return self.index.record(cid).previous
