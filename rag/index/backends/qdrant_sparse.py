"""BM25 as Qdrant sparse vectors: the term-frequency part is computed here, the IDF by
Qdrant (the collection's sparse vector has `modifier: idf`).

bm25s (the `local` backend, method "lucene") scores a document d for query terms q as

    sum over t in q of  idf(t) * tf(t, d) / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl))
    idf(t) = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))

Qdrant's IDF modifier multiplies each query term's value by exactly that idf, counted
over the points that hold the sparse vector. So a document's vector holds the tf
fraction of each of its terms, a question's vector holds how often each term occurs in
it (bm25s sums a repeated query term once per occurrence), and the dot product Qdrant
takes is the BM25 score bm25s gives (tests/rag/index/test_qdrant_sparse.py checks it).

Terms are mapped to sparse indices by a stable 32-bit hash, so any process that can
tokenize a question can query, with no vocabulary to ship to `rag serve` replicas. Two
terms with the same hash share a dimension (about n^2 / 2^33 pairs among n terms: none
expected among the seeds' 4 thousand terms, about 116 among a million); the build
counts them into the manifest.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass

# bm25s.BM25()'s defaults, which the local backend uses.
K1 = 1.5
B = 0.75


# Every document vector holds this dimension, with weight 0, and no term maps to it. Qdrant's
# engine counts only points with a non-empty sparse vector in the idf's N, while bm25s
# (and qdrant-client's local mode) count every document; a chunk without terms (a line of
# digits and stopwords) would otherwise make the engine's BM25 differ from local mode's
# (found by tests/rag/index/test_qdrant_edge.py).
DOCUMENT_DIMENSION = 0


def term_index(term: str) -> int:
    """The sparse dimension of a BM25 term: its 32-bit blake2b hash, never 0."""
    digest = hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "little") % (2**32 - 1) + 1


@dataclass(frozen=True)
class SparseVector:
    indices: list[int]
    values: list[float]


def _vector(weights: dict[int, float]) -> SparseVector:
    indices = sorted(weights)
    return SparseVector(indices, [weights[i] for i in indices])


def average_length(documents: list[list[str]]) -> float:
    """Mean number of terms per document (bm25s's avgdl), 1.0 for no documents."""
    total = sum(len(terms) for terms in documents)
    return total / len(documents) if documents and total else 1.0


def document_vector(terms: list[str], avgdl: float, k1: float = K1, b: float = B) -> SparseVector:
    """The tf fraction of each term of one document (its BM25 score without the idf)."""
    norm = k1 * (1 - b + b * len(terms) / avgdl)
    weights: dict[int, float] = {DOCUMENT_DIMENSION: 0.0}
    for term, tf in Counter(terms).items():
        index = term_index(term)
        # A hash collision inside one document adds up, as the two terms would.
        weights[index] = weights.get(index, 0.0) + tf / (tf + norm)
    return _vector(weights)


def query_vector(terms: list[str]) -> SparseVector:
    """How many times each term occurs in the question."""
    counts: dict[int, float] = {}
    for term in terms:
        index = term_index(term)
        counts[index] = counts.get(index, 0.0) + 1.0
    return _vector(counts)


def collisions(documents: list[list[str]]) -> int:
    """How many distinct terms share a hash with an earlier term."""
    seen: dict[int, str] = {}
    clashing: set[str] = set()
    for terms in documents:
        for term in set(terms):
            if seen.setdefault(term_index(term), term) != term:
                clashing.add(term)
    return len(clashing)
