"""BM25 through Qdrant's IDF modifier equals bm25s's BM25 (the local backend's).

Runs the real qdrant-client (in-memory local mode) and real bm25s on a small corpus with
repeated terms, different lengths and a document with no terms at all."""

from __future__ import annotations

import bm25s
import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from rag.index.backends import qdrant_sparse
from rag.text import tokenize

DOCS = [
    "Protests in Iran began in late December 2025 over economic hardship.",
    "The protests spread to every province; protests, strikes and protests again.",
    "Nikita Smagin is a leading Iran expert.",
    "Economic hardship drove the protests, the expert said.",
    "The weather was mild.",
    "",  # no terms: still counts as a document for bm25s's N and avgdl
    "Iran Iran Iran.",
    "A long paragraph about the economy, inflation, the rial, wages, subsidies, fuel "
    "prices, bread prices and the cost of living in Tehran and the provinces.",
]
QUESTIONS = [
    "When did the protests in Iran begin?",
    "Who is the Iran expert?",
    "protests protests economy",
    "inflation of the rial",
    "unknown words only: zebra",
]


def test_term_index_is_stable_and_32_bit() -> None:
    # A fixed value: replicas and builds in other processes must map terms alike.
    assert qdrant_sparse.term_index("protest") == qdrant_sparse.term_index("protest")
    assert qdrant_sparse.term_index("protest") != qdrant_sparse.term_index("protests")
    assert 0 < qdrant_sparse.term_index("iran") < 2**32


def test_document_vector_is_the_tf_fraction() -> None:
    # |d| = 3, avgdl = 2: norm = 1.5 * (0.25 + 0.75 * 1.5) = 2.0625
    vector = qdrant_sparse.document_vector(["a", "b", "a"], avgdl=2.0)
    weights = dict(zip(vector.indices, vector.values, strict=True))
    assert weights[qdrant_sparse.term_index("a")] == pytest.approx(2 / (2 + 2.0625))
    assert weights[qdrant_sparse.term_index("b")] == pytest.approx(1 / (1 + 2.0625))
    assert vector.indices == sorted(vector.indices)
    # The dimension that makes every chunk count in Qdrant's N, and nothing else.
    assert weights[qdrant_sparse.DOCUMENT_DIMENSION] == 0.0
    assert len(weights) == 3
    assert qdrant_sparse.document_vector([], avgdl=2.0).indices == [0]


def test_query_vector_counts_repeats() -> None:
    vector = qdrant_sparse.query_vector(["a", "b", "a"])
    weights = dict(zip(vector.indices, vector.values, strict=True))
    assert weights == {qdrant_sparse.term_index("a"): 2.0, qdrant_sparse.term_index("b"): 1.0}


def test_collisions_counts_distinct_clashing_terms(monkeypatch: pytest.MonkeyPatch) -> None:
    assert qdrant_sparse.collisions([tokenize(d) for d in DOCS]) == 0
    monkeypatch.setattr(qdrant_sparse, "term_index", lambda term: len(term))
    # "ab"/"cd" clash (length 2), twice over two documents: one clashing term.
    assert qdrant_sparse.collisions([["ab", "cd"], ["cd", "ab", "xyz"]]) == 1


def test_qdrant_idf_scores_equal_bm25s() -> None:
    terms = [tokenize(d) for d in DOCS]
    reference = bm25s.BM25()
    reference.index(terms, show_progress=False)

    client = QdrantClient(":memory:")
    client.create_collection(
        "bm25",
        vectors_config={},
        sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)},
    )
    avgdl = qdrant_sparse.average_length(terms)
    points = []
    for i, doc_terms in enumerate(terms):
        vector = qdrant_sparse.document_vector(doc_terms, avgdl)
        points.append(
            models.PointStruct(
                id=i,
                vector={"bm25": models.SparseVector(indices=vector.indices, values=vector.values)},
            )
        )
    client.upsert("bm25", points)

    for question in QUESTIONS:
        q_terms = tokenize(question)
        known = [t for t in q_terms if t in reference.vocab_dict]
        expected = reference.get_scores(known) if known else np.zeros(len(DOCS), dtype=np.float32)
        query = qdrant_sparse.query_vector(q_terms)
        found = client.query_points(
            "bm25",
            query=models.SparseVector(indices=query.indices, values=query.values),
            using="bm25",
            limit=len(DOCS),
        ).points
        got = np.zeros(len(DOCS), dtype=np.float32)
        for point in found:
            got[point.id] = point.score
        assert got == pytest.approx(expected, abs=1e-5), question
        # Something to compare: every question but the last matches a document.
        assert (expected.max() > 0) == (question != QUESTIONS[-1])
    client.close()
