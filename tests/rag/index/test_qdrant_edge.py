"""The Qdrant settings and queries the backend relies on give the same ids and scores on
Qdrant's real engine (Qdrant Edge, `qdrant-edge-py`) as in qdrant-client's embedded local
mode, which is what the rest of the tests run on. So local mode is known to behave like
production for: dense cosine top-k, BM25 as sparse vectors with the IDF modifier,
multivector MaxSim over given candidates (and as a rerank stage over prefetched ones),
and a payload filter on `source`.

Data: the seeds' lines as documents (their real BM25 terms), with seeded random unit
vectors for the dense and token embeddings (the engines are compared, not the model).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import qdrant_edge as edge
from qdrant_client import QdrantClient, models

from rag.index.backends import qdrant_sparse
from rag.index.backends.qdrant_edge import create_shard
from rag.index.backends.qdrant_settings import DENSE, SPARSE, TOKENS, load_settings
from rag.text import tokenize

SEEDS = Path(__file__).resolve().parents[3] / "seeds"
DIM = 384
K = 20
# Token vectors are stored as float16 by the settings; Edge computes in float16 too.
TOKEN_TOLERANCE = 2e-3
TOLERANCE = 1e-4


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def corpus() -> dict:
    rng = np.random.default_rng(7)
    docs = []
    for path in sorted(SEEDS.glob("*.txt")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                docs.append((path.name, number, line))
    terms = [tokenize(line) for _, _, line in docs]
    avgdl = qdrant_sparse.average_length(terms)
    n = len(docs)
    return {
        "sources": [s for s, _, _ in docs],
        "sparse": [qdrant_sparse.document_vector(t, avgdl) for t in terms],
        "dense": _unit(rng.normal(size=(n, DIM))),
        "tokens": [
            _unit(rng.normal(size=(int(rng.integers(4, 40)), DIM))).astype(np.float16)
            for _ in range(n)
        ],
        "rng": rng,
    }


@pytest.fixture(scope="module")
def engines(corpus: dict, tmp_path_factory: pytest.TempPathFactory):
    settings = load_settings(dimension=DIM)
    client = QdrantClient(":memory:")
    client.create_collection("parity", **settings.create_kwargs())
    shard = create_shard(tmp_path_factory.mktemp("edge") / "shard", settings)
    points, edge_points = [], []
    for i, source in enumerate(corpus["sources"]):
        sparse = corpus["sparse"][i]
        tokens = corpus["tokens"][i].astype(np.float32).tolist()
        dense = corpus["dense"][i].tolist()
        points.append(
            models.PointStruct(
                id=i,
                vector={
                    DENSE: dense,
                    TOKENS: tokens,
                    SPARSE: models.SparseVector(indices=sparse.indices, values=sparse.values),
                },
                payload={"source": source},
            )
        )
        edge_points.append(
            edge.Point(
                i,
                {
                    DENSE: dense,
                    TOKENS: tokens,
                    SPARSE: edge.SparseVector(sparse.indices, sparse.values),
                },
                {"source": source},
            )
        )
    client.upsert("parity", points)
    shard.update(edge.UpdateOperation.upsert_points(edge_points))
    shard.optimize()  # build the HNSW and sparse indexes, as a server would
    yield client, shard
    shard.close()
    client.close()


def _same(local: list, real: list, tolerance: float) -> None:
    """Same scores rank by rank, and the same ids except among (near-)ties."""
    assert len(local) == len(real) > 0
    local_scores = np.array([p.score for p in local])
    real_scores = np.array([p.score for p in real])
    assert real_scores == pytest.approx(local_scores, abs=tolerance, rel=tolerance)
    by_id = {p.id: p.score for p in real}
    for rank, point in enumerate(local):
        if point.id != real[rank].id:
            # Only a near-tie may swap places: the other engine holds it with that score.
            assert point.id in by_id or abs(point.score - local_scores[-1]) <= tolerance
            assert abs(point.score - real[rank].score) <= tolerance


def _source_filter(names: list[str]) -> tuple[models.Filter, edge.Filter]:
    return (
        models.Filter(must=[models.FieldCondition(key="source", match=models.MatchAny(any=names))]),
        edge.Filter(must=[edge.FieldCondition("source", match=edge.MatchAny(names))]),
    )


FILTERS = [None, ["001_77e29c8a411f06ba.txt", "003_140432cbe8cf683f.txt"]]


@pytest.mark.parametrize("names", FILTERS, ids=["all", "two-sources"])
def test_dense_cosine(engines, corpus: dict, names: list[str] | None) -> None:
    client, shard = engines
    local_filter, edge_filter = _source_filter(names) if names else (None, None)
    for _ in range(5):
        query = _unit(corpus["rng"].normal(size=DIM)).tolist()
        local = client.query_points(
            "parity", query=query, using=DENSE, limit=K, query_filter=local_filter
        ).points
        real = shard.query(
            edge.QueryRequest(
                limit=K,
                query=edge.Query.Nearest(query, using=DENSE),
                filter=edge_filter,
                params=edge.SearchParams(exact=True),
            )
        )
        _same(local, real, TOLERANCE)
        if names:
            assert {corpus["sources"][p.id] for p in local} <= set(names)


@pytest.mark.parametrize("names", FILTERS, ids=["all", "two-sources"])
def test_sparse_bm25_with_idf_modifier(engines, corpus: dict, names: list[str] | None) -> None:
    client, shard = engines
    local_filter, edge_filter = _source_filter(names) if names else (None, None)
    for question in (
        "When did the protests in Iran begin?",
        "Who is Nikita Smagin?",
        "economic hardship protests protests",
    ):
        query = qdrant_sparse.query_vector(tokenize(question))
        local = client.query_points(
            "parity",
            query=models.SparseVector(indices=query.indices, values=query.values),
            using=SPARSE,
            limit=K,
            query_filter=local_filter,
        ).points
        real = shard.query(
            edge.QueryRequest(
                limit=K,
                query=edge.Query.Nearest(
                    edge.SparseVector(query.indices, query.values), using=SPARSE
                ),
                filter=edge_filter,
            )
        )
        _same(local, real, TOLERANCE)
        assert local[0].score > 1.0  # a real BM25 score, idf applied


def test_multivector_maxsim_over_candidates(engines, corpus: dict) -> None:
    """IDF-weighted MaxSim of question tokens against given candidates (the Dot
    multivector makes a weight scale its token's best match)."""
    client, shard = engines
    rng = corpus["rng"]
    candidates = sorted(rng.choice(len(corpus["sources"]), size=60, replace=False).tolist())
    weights = rng.uniform(0.5, 3.0, size=6).astype(np.float32)
    query = (_unit(rng.normal(size=(6, DIM))) * weights[:, None]).tolist()
    local = client.query_points(
        "parity",
        query=query,
        using=TOKENS,
        limit=len(candidates),
        query_filter=models.Filter(must=[models.HasIdCondition(has_id=candidates)]),
    ).points
    real = shard.query(
        edge.QueryRequest(
            limit=len(candidates),
            query=edge.Query.Nearest(query, using=TOKENS),
            filter=edge.Filter(must=[edge.HasIdCondition(set(candidates))]),
        )
    )
    _same(local, real, TOKEN_TOLERANCE)
    # The score is the weighted sum of each query token's best dot product, as here.
    best = local[0]
    doc = corpus["tokens"][best.id].astype(np.float32)
    expected = float((np.asarray(query, dtype=np.float32) @ doc.T).max(axis=1).sum())
    assert best.score == pytest.approx(expected, abs=TOKEN_TOLERANCE)


def test_maxsim_as_rerank_stage(engines, corpus: dict) -> None:
    """Dense and BM25 candidates prefetched, reranked by MaxSim in the same query: how
    MaxSim runs next to the data on a cluster (docs/scaling.md)."""
    client, shard = engines
    rng = corpus["rng"]
    dense = _unit(rng.normal(size=DIM)).tolist()
    sparse = qdrant_sparse.query_vector(tokenize("protests in Iran over economic hardship"))
    tokens = _unit(rng.normal(size=(5, DIM))).tolist()
    local = client.query_points(
        "parity",
        prefetch=[
            models.Prefetch(query=dense, using=DENSE, limit=50),
            models.Prefetch(
                query=models.SparseVector(indices=sparse.indices, values=sparse.values),
                using=SPARSE,
                limit=50,
            ),
        ],
        query=tokens,
        using=TOKENS,
        limit=K,
    ).points
    real = shard.query(
        edge.QueryRequest(
            limit=K,
            prefetches=[
                edge.Prefetch(
                    50,
                    query=edge.Query.Nearest(dense, using=DENSE),
                    params=edge.SearchParams(exact=True),
                ),
                edge.Prefetch(
                    50,
                    query=edge.Query.Nearest(
                        edge.SparseVector(sparse.indices, sparse.values), using=SPARSE
                    ),
                ),
            ],
            query=edge.Query.Nearest(tokens, using=TOKENS),
        )
    )
    _same(local, real, TOKEN_TOLERANCE)


def test_retrieve_returns_what_was_stored(engines, corpus: dict) -> None:
    client, shard = engines
    ids = [0, 5, 17]
    local = {r.id: r for r in client.retrieve("parity", ids, with_vectors=True, with_payload=True)}
    real = {r.id: r for r in shard.retrieve(ids, with_payload=True, with_vector=True)}
    for i in ids:
        assert local[i].payload == real[i].payload == {"source": corpus["sources"][i]}
        assert np.allclose(local[i].vector[DENSE], real[i].vector[DENSE], atol=1e-6)
        assert np.allclose(
            np.asarray(local[i].vector[TOKENS]), corpus["tokens"][i].astype(np.float32), atol=1e-3
        )
        assert np.allclose(
            np.asarray(real[i].vector[TOKENS]), corpus["tokens"][i].astype(np.float32), atol=1e-3
        )
