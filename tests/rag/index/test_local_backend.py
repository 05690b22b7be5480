"""What is particular to the local backend: its filters on an HNSW index (exact over a
few allowed rows, FAISS's selector over many), its files, and rewriting on flush."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.chunker import Chunk
from rag.config import IndexConfig
from rag.index.backend import ChunkRecord, chunk_id, create_backend
from rag.index.backends.local import FILES, LocalBackend
from rag.index.dense import AUTO_HNSW_MIN

DIM = 8


def _many(n: int, sources: int, seed: int = 0) -> list[ChunkRecord]:
    """`n` one-word chunks spread over `sources` files, random unit vectors."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    records = []
    for i in range(n):
        source = f"s{i % sources}.txt"
        text = f"word{i % 97}"
        chunk = Chunk(source, i + 1, 10 * i, 10 * i + len(text), text, 1, sentences=((0, 1),))
        records.append(
            ChunkRecord(
                chunk_id(source, chunk.start, chunk.end),
                chunk,
                vectors[i],
                f"k{i}",
                vectors[i : i + 1].astype(np.float16),
                np.asarray([100 + i % 50], dtype=np.int32),
                np.asarray([[0, len(text)]], dtype=np.int32),
            )
        )
    return records


def _exact(records: list[ChunkRecord], query: np.ndarray, k: int, source: set[str]) -> list[int]:
    allowed = [r for r in records if r.chunk.source in source]
    allowed.sort(key=lambda r: -float(r.vector @ query))
    return [r.id for r in allowed[:k]]


@pytest.fixture(scope="module")
def hnsw(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalBackend, list[ChunkRecord]]:
    records = _many(AUTO_HNSW_MIN + 500, sources=20)
    folder = tmp_path_factory.mktemp("hnsw") / "index"
    backend = create_backend(folder, DIM, IndexConfig(dense="auto"))
    for lo in range(0, len(records), 4096):
        backend.add(records[lo : lo + 4096])
    backend.flush()
    assert isinstance(backend, LocalBackend) and backend.dense.kind == "hnsw"
    return backend, records


@pytest.mark.slow  # building HNSW over 20k vectors takes about 15 s here
def test_a_tight_filter_on_hnsw_is_searched_exactly(hnsw: tuple) -> None:
    backend, records = hnsw
    query = records[7].vector
    found = backend.dense_search(query, 10, sources={"s7.txt"})  # 1/20 of the rows
    assert [cid for cid, _ in found] == _exact(records, query, 10, {"s7.txt"})
    assert found[0] == (records[7].id, pytest.approx(1.0, abs=1e-5))


@pytest.mark.slow
def test_a_wide_filter_on_hnsw_uses_faiss_selector(hnsw: tuple) -> None:
    backend, records = hnsw
    wide = {f"s{i}.txt" for i in range(19)}  # 95% of the rows: above AUTO_HNSW_MIN
    query = records[3].vector
    found = backend.dense_search(query, 10, sources=wide)
    assert all(backend.fetch([cid])[0].chunk.source in wide for cid, _ in found)
    expected = _exact(records, query, 10, wide)
    assert found[0][0] == records[3].id
    assert len({cid for cid, _ in found} & set(expected)) >= 9  # HNSW recall@10
    excluded = backend.dense_search(records[19].vector, 10, sources=wide)  # s19 is out
    assert records[19].id not in {cid for cid, _ in excluded}


def test_flush_writes_the_files_and_drops_the_pending_arrays(tmp_path: Path) -> None:
    records = _many(30, sources=3)
    backend = create_backend(tmp_path / "index", DIM, IndexConfig())
    backend.add(records)
    assert (tmp_path / "index" / ".pending").is_dir()  # streamed to disk, not held
    backend.flush()
    assert all((tmp_path / "index" / name).is_file() for name in FILES)
    assert not (tmp_path / "index" / ".pending").exists()
    assert sorted(p.name for p in (tmp_path / "index").iterdir()) == sorted([*FILES, "sparse"])
    backend.delete([records[0].id])
    backend.flush()
    assert backend.count() == 29
    assert [r.id for r in backend.fetch([records[0].id, records[1].id])] == [records[1].id]
    backend.close()
