"""Dense index (rag/index/dense.py): exact search below AUTO_HNSW_MIN vectors, HNSW from
there on, and HNSW at the switch finds what exact search finds. Random unit vectors, no
model."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from rag.errors import RagError
from rag.index.dense import (
    AUTO_HNSW_MIN,
    HNSW_EF_SEARCH,
    HNSW_M,
    DenseIndex,
    choose_kind,
)

DIM = 32


def unit_vectors(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Ids of the k largest inner products, by numpy."""
    return np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :k]


def test_auto_switches_exactly_at_auto_hnsw_min() -> None:
    assert AUTO_HNSW_MIN == 20_000  # the crossover measured in docs/benchmarks.md
    assert choose_kind("auto", AUTO_HNSW_MIN - 1) == "flat"
    assert choose_kind("auto", AUTO_HNSW_MIN) == "hnsw"
    assert choose_kind("flat", 10 * AUTO_HNSW_MIN) == "flat"
    assert choose_kind("hnsw", 1) == "hnsw"
    with pytest.raises(RagError, match=r"valid choices: \['auto', 'flat', 'hnsw'\]"):
        choose_kind("ivf", 5)  # type: ignore[arg-type]


def test_just_below_the_switch_search_is_exact() -> None:
    vectors = unit_vectors(AUTO_HNSW_MIN - 1, seed=1)
    index = DenseIndex.build(vectors)
    assert index.kind == "flat" and isinstance(index.index, faiss.IndexFlatIP)
    queries = unit_vectors(50, seed=2)
    scores, ids = index.search(queries, 10)
    np.testing.assert_array_equal(ids, exact_top(vectors, queries, 10))
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ vectors.T, ids, 1), atol=1e-5)


@pytest.mark.slow  # building HNSW over 20,000 vectors takes ~13 s on this machine
def test_at_the_switch_hnsw_finds_what_exact_search_finds(tmp_path: Path) -> None:
    vectors = unit_vectors(AUTO_HNSW_MIN, seed=3)
    index = DenseIndex.build(vectors)
    assert index.kind == "hnsw" and isinstance(index.index, faiss.IndexHNSWFlat)
    assert index.size == AUTO_HNSW_MIN and index.dimension == DIM
    assert index.index.hnsw.efSearch == HNSW_EF_SEARCH
    assert index.index.metric_type == faiss.METRIC_INNER_PRODUCT
    assert index.index.hnsw.nb_neighbors(1) == HNSW_M

    # Every stored vector finds itself first, with cosine 1.
    sample = np.arange(0, AUTO_HNSW_MIN, 40)
    scores, ids = index.search(vectors[sample], 1)
    np.testing.assert_array_equal(ids[:, 0], sample)
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)

    # New questions: recall@10 against exact search (README: >= 0.998 up to 50k), and
    # the scores are the true cosines of the ids returned.
    queries = unit_vectors(200, seed=4)
    scores, ids = index.search(queries, 10)
    exact = exact_top(vectors, queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, exact, strict=True)])
    assert recall >= 0.99, recall
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ vectors.T, ids, 1), atol=1e-5)

    # Saved and loaded, it is the same HNSW index with the same search depth.
    index.save(tmp_path / "dense.faiss")
    loaded = DenseIndex.load(tmp_path / "dense.faiss")
    assert loaded.kind == "hnsw" and loaded.index.hnsw.efSearch == HNSW_EF_SEARCH
    np.testing.assert_array_equal(loaded.search(queries, 10)[1], ids)
