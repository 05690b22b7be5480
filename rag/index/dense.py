"""Dense vector index backends on FAISS, behind one small interface.

Vectors are L2-normalised, so inner product equals cosine similarity: every backend
uses METRIC_INNER_PRODUCT and scores are cosines in [-1, 1].
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import faiss
import numpy as np

from rag.errors import RagError

DenseKind = Literal["auto", "flat", "hnsw"]
KINDS = ("auto", "flat", "hnsw")

# Below this many vectors exact search is fast enough (and exact); above it HNSW wins.
# Measured by scripts/bench.py (section "scale", docs/benchmarks.md): one exact query
# costs ~1 ms at 10k vectors and 40+ ms from 20k on this 2-core machine, while HNSW
# answers in 0.1-0.3 ms with recall@10 >= 0.998 up to 50k; so HNSW from 20k on.
AUTO_HNSW_MIN = 20_000
# At 1M clustered vectors (docs/benchmarks.md), efConstruction 80 levels off near
# recall@10 0.94 however hard one searches; efConstruction 200 gives 0.968 at efSearch
# 128 in 1.3 ms, at 2.6x the build time.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 128


def choose_kind(kind: DenseKind, count: int) -> str:
    if kind not in KINDS:
        raise RagError(f"unknown dense index kind {kind!r}; valid choices: {list(KINDS)}")
    if kind == "auto":
        return "hnsw" if count >= AUTO_HNSW_MIN else "flat"
    return kind


class DenseIndex:
    """index / search / save / load over a FAISS index of normalised vectors."""

    def __init__(self, index: faiss.Index, kind: str) -> None:
        self.index = index
        self.kind = kind

    @classmethod
    def build(cls, vectors: np.ndarray, kind: DenseKind = "auto") -> DenseIndex:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        resolved = choose_kind(kind, len(vectors))
        dim = vectors.shape[1]
        if resolved == "flat":
            index: faiss.Index = faiss.IndexFlatIP(dim)
        else:
            index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            index.hnsw.efSearch = HNSW_EF_SEARCH
        index.add(vectors)
        return cls(index, resolved)

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    @property
    def dimension(self) -> int:
        return int(self.index.d)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of shape (len(queries), k); missing neighbours have id -1."""
        k = max(1, min(k, self.size))
        return self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)

    def vectors(self) -> np.ndarray:
        return self.index.reconstruct_n(0, self.size)

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path) -> DenseIndex:
        index = faiss.read_index(str(path))
        kind = "hnsw" if isinstance(index, faiss.IndexHNSWFlat) else "flat"
        if kind == "hnsw":
            index.hnsw.efSearch = HNSW_EF_SEARCH
        return cls(index, kind)
