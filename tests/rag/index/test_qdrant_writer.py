"""Points written by other processes than the driver (the Ray build's writer actors):
the lent collection, the embedded store's lock, the writer stage's rows, and that a
collection written that way equals one the driver wrote. Real qdrant-client in
embedded mode, small vectors, no model, no Ray (the Ray builds are in
test_ray_qdrant.py)."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from rag.config import IndexConfig
from rag.errors import BackendUnavailableError, UnsupportedOperationError
from rag.index.backend import ChunkLinks, ChunkRecord, create_backend
from rag.index.backends.qdrant_writer import WriterSpec, wait_for_store
from rag.index.duplicates import text_vector
from tests.rag.index.test_qdrant_backend import DIM, _records, small_settings  # noqa: F401

QDRANT = IndexConfig(backend="qdrant")


def _light(record: ChunkRecord) -> ChunkRecord:
    """A record as the driver gets it back from a writer: no token embeddings."""
    return dataclasses.replace(record, tokens=None, token_spans=None)


def _links(records: list[ChunkRecord]) -> dict[int, ChunkLinks]:
    n = len(records)
    return {
        r.id: ChunkLinks(
            duplicates=(records[(i + 3) % n].id,), previous=records[i - 1].id if i else None
        )
        for i, r in enumerate(records)
    }


def test_points_a_writer_stored_and_the_driver_adopted_equal_points_the_driver_wrote(
    small_settings: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    records = _records(6)
    terms = ["strikes", "tehran", "paragraph", "number"]
    driver = create_backend(tmp_path / "driver", DIM, QDRANT)
    driver.add(records)
    driver.link(_links(records))
    driver.flush()
    remote = create_backend(tmp_path / "remote", DIM, QDRANT)
    try:
        with remote.remote_writes() as spec:
            assert isinstance(spec, WriterSpec) and not spec.concurrent
            assert spec.avgdl == 1.0  # the corpus's length is not known yet
            writer = spec.open()  # the driver's client is closed: this may hold the store
            writer.write(records[:4])
            assert writer.written == 4
            writer.close()
        # As the Ray build does: the rows a writer stored are adopted, the others (the
        # embedding cache's) added by the driver.
        remote.adopt([_light(r) for r in records[:4]])
        remote.add(records[4:])
        remote.link(_links(records))
        remote.flush()
        assert remote.count() == driver.count() == 6
        ids = [r.id for r in records]
        got, want = remote.fetch(ids, tokens=True), driver.fetch(ids, tokens=True)
        for a, b in zip(got, want, strict=True):
            assert (a.chunk, a.key, a.duplicates, a.previous) == (
                b.chunk,
                b.key,
                b.duplicates,
                b.previous,
            )
            # Embedded mode normalises cosine vectors again as it reloads a store: the
            # last bit may differ.
            assert np.allclose(a.vector, b.vector, atol=1e-6)
            assert np.array_equal(a.tokens, b.tokens)
            assert np.array_equal(a.token_ids, b.token_ids)
        # The sparse vectors were rewritten for the corpus's average length (not 1.0).
        assert remote._stats.avgdl == driver._stats.avgdl > 1.0
        scores = remote.lexical_scores(terms, ids)
        assert np.allclose(scores, driver.lexical_scores(terms, ids), atol=1e-5)
        assert (scores > 0).all()
        found, expected = (
            dict(remote.lexical_search(terms, 6)),
            dict(driver.lexical_search(terms, 6)),
        )
        assert found.keys() == expected.keys() == set(ids)
        assert all(abs(found[i] - expected[i]) < 1e-5 for i in ids)
        a, b = remote.stats(), driver.stats()
        assert a.chunks == b.chunks and np.array_equal(a.piece_df, b.piece_df)
    finally:
        remote.close()
        driver.close()


def test_the_driver_waits_for_the_writer_to_let_the_embedded_store_go(
    small_settings: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    backend = create_backend(tmp_path / "index", DIM, QDRANT)
    lend = backend.remote_writes()
    try:
        spec = lend.__enter__()
        writer = spec.open()
        with pytest.raises(BackendUnavailableError, match="still held by another process"):
            wait_for_store(Path(spec.store), timeout=0.3)
        threading.Timer(0.5, writer.close).start()
        started = time.monotonic()
        lend.__exit__(None, None, None)  # returns once the writer has closed
        assert time.monotonic() - started >= 0.4
        backend.ping()  # the driver holds the store again
    finally:
        backend.close()


def test_a_failed_pipeline_leaves_the_store_closed_for_the_build_to_discard(
    small_settings: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    backend = create_backend(tmp_path / "index", DIM, QDRANT)
    with pytest.raises(RuntimeError, match="worker died"), backend.remote_writes() as spec:
        writer = spec.open()  # still open: the error must not wait for it
        raise RuntimeError("worker died")
    writer.close()
    backend.discard()
    backend.close()


def test_only_backends_that_take_remote_writes_lend_and_adopt(tmp_path: Path) -> None:
    local = create_backend(tmp_path / "index", DIM, IndexConfig())
    try:
        assert local.remote_writes() is None
        with pytest.raises(UnsupportedOperationError, match="local backend takes no remote writes"):
            local.adopt(_records(1))
    finally:
        local.close()


def test_adopt_needs_the_token_ids_for_the_statistics(
    small_settings: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    backend = create_backend(tmp_path / "index", DIM, QDRANT)
    try:
        record = dataclasses.replace(_records(1)[0], token_ids=None)
        with pytest.raises(ValueError, match="no token ids"):
            backend.adopt([record])
    finally:
        backend.close()


def test_server_specs_allow_concurrent_writers() -> None:
    spec = WriterSpec("rag-1", "http://qdrant:6333", None, 1.0, 64)
    assert spec.concurrent
    assert not dataclasses.replace(spec, url=None, store="/x/qdrant").concurrent


def _embedder_batch(records: list[ChunkRecord], cached: list[bool]) -> dict[str, np.ndarray]:
    """A batch as the embedding actors hand it on (ray_executor.ChunkEmbedder)."""
    rows = [json.dumps(dataclasses.asdict(r.chunk)) for r in records]
    raw = [
        (b"", b"", b"")
        if c
        else (
            np.asarray(r.tokens, dtype=np.float16).tobytes(),
            np.asarray(r.token_ids, dtype=np.int32).tobytes(),
            np.asarray(r.token_spans, dtype=np.int32).tobytes(),
        )
        for r, c in zip(records, cached, strict=True)
    ]
    return {
        "chunk": np.asarray(rows, dtype=object),
        "key": np.asarray([r.key for r in records], dtype=object),
        "cached": np.asarray(cached, dtype=bool),
        "vector": np.stack(
            [
                np.zeros(DIM, np.float32) if c else r.vector
                for r, c in zip(records, cached, strict=True)
            ]
        ),
        "tokens": np.asarray([t for t, _, _ in raw], dtype=object),
        "token_ids": np.asarray([i for _, i, _ in raw], dtype=object),
        "token_spans": np.asarray([s for _, _, s in raw], dtype=object),
    }


def test_the_writer_stage_stores_fresh_rows_and_hands_on_light_ones(
    small_settings: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    from rag.index.executors.ray_writer import PointWriter

    records = _records(5)
    cached = [False, True, False, False, True]
    backend = create_backend(tmp_path / "index", DIM, QDRANT)
    try:
        with backend.remote_writes() as spec:
            stage = PointWriter(spec, DIM)
            out = stage(_embedder_batch(records, cached))
            del stage  # as Ray does at the pipeline's end: closes the writer
        assert set(out) == {
            "chunk",
            "key",
            "cached",
            "vector",
            "token_ids",
            "written",
            "text_vector",
            "writer",
        }
        assert out["written"].tolist() == [not c for c in cached]
        me = f"{socket.gethostname()}:{os.getpid()}"
        assert out["writer"].tolist() == ["" if c else me for c in cached]
        for i, record in enumerate(records):
            expected = np.zeros(DIM, np.float32) if cached[i] else text_vector(record)
            assert np.allclose(out["text_vector"][i], expected, atol=1e-3), i
        # The fresh rows are in the collection, the cached ones are not.
        fresh = [r.id for r, c in zip(records, cached, strict=True) if not c]
        stored = backend.fetch([r.id for r in records], tokens=True)
        assert [r.id for r in stored] == fresh
        assert all(s.previous is None and s.duplicates == () for s in stored)
    finally:
        backend.close()
