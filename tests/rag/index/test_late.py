"""Late interaction on a hand-made token store: exact MaxSim values, and a batch's shared
product with the store gives what each question's own product gives."""

from __future__ import annotations

import numpy as np
import pytest

from rag.embedder import TokenBlock
from rag.index.late import TokenStore, maxsim, maxsim_many, similarities


def _unit(*rows: list[float]) -> np.ndarray:
    m = np.asarray(rows, dtype=np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


@pytest.fixture()
def store() -> TokenStore:
    """Two chunks in 3 dimensions: chunk 0 has tokens e1, e2 (e1 is context: span start
    0, own text from offset 5); chunk 1 has e3 alone."""
    blocks = [
        TokenBlock(
            vector=_unit([1, 1, 0])[0],
            embeddings=_unit([1, 0, 0], [0, 1, 0]).astype(np.float16),
            ids=np.array([10, 11], dtype=np.int32),
            spans=np.array([[0, 4], [5, 9]], dtype=np.int32),
        ),
        TokenBlock(
            vector=_unit([0, 0, 1])[0],
            embeddings=_unit([0, 0, 1]).astype(np.float16),
            ids=np.array([12], dtype=np.int32),
            spans=np.array([[0, 4]], dtype=np.int32),
        ),
    ]
    built = TokenStore.from_blocks(blocks, 3)
    # As loaded from disk: a small store is held as float32, with a torch view.
    return TokenStore(built.embeddings.astype(np.float32), built.ids, built.spans, built.offsets)


def test_maxsim_by_hand(store: TokenStore) -> None:
    query = _unit([1, 0, 0], [0, 0, 1])
    weights = np.array([3.0, 1.0], dtype=np.float32)
    # Chunk 0: best cosines 1 (e1) and 0 -> (3*1 + 1*0) / 4 = 0.75.
    assert maxsim(query, weights, store.block(0)[0]) == pytest.approx(0.75)
    own, everything = maxsim_many(query, weights, store, [0, 1], np.array([5, 0]))
    # Chunk 0's own text is e2 only: cosines 0 and 0 -> 0. Chunk 1: 0 and 1 -> 0.25.
    np.testing.assert_allclose(own, [0.0, 0.25], atol=1e-6)
    np.testing.assert_allclose(everything, [0.75, 0.25], atol=1e-6)


def test_batch_product_equals_each_questions_own(store: TokenStore) -> None:
    queries = [_unit([1, 0, 0], [0, 0, 1]), _unit([1, 1, 1]), _unit([0, 1, 0], [1, 0, 1])]
    weights = [np.ones(len(q), dtype=np.float32) for q in queries]
    shared = similarities(queries, store)
    assert [s.shape for s in shared] == [(2, 3), (1, 3), (2, 3)]
    for q, w, sims in zip(queries, weights, shared, strict=True):
        np.testing.assert_allclose(sims, q @ store.embeddings.T, atol=1e-6)
        alone = maxsim_many(q, w, store, [0, 1], np.array([5, 0]))
        batched = maxsim_many(q, w, store, [0, 1], np.array([5, 0]), sims)
        np.testing.assert_allclose(batched, alone, atol=1e-6)
    assert similarities([], store) == []
