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


def _multi_token(n: int, seed: int) -> list[ChunkRecord]:
    """`n` chunks of 1 to 5 tokens each (random unit embeddings), ids from `seed`."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        text = " ".join(f"w{seed}x{i}y{j}" for j in range(1 + i % 5))
        source = f"s{i % 2}.txt"
        start = 1000 * seed + 100 * i
        chunk = Chunk(source, i + 1, start, start + len(text), text, 1, sentences=((0, 1),))
        width = 1 + i % 5
        tokens = rng.normal(size=(width, DIM)).astype(np.float32)
        tokens /= np.linalg.norm(tokens, axis=1, keepdims=True)
        vector = tokens.mean(axis=0) / np.linalg.norm(tokens.mean(axis=0))
        records.append(
            ChunkRecord(
                chunk_id(source, chunk.start, chunk.end),
                chunk,
                vector.astype(np.float32),
                f"k{seed}-{i}",
                tokens.astype(np.float16),
                rng.integers(100, 3000, size=width).astype(np.int32),
                np.asarray([[3 * j, 3 * j + 2] for j in range(width)], dtype=np.int32),
            )
        )
    return records


def test_flush_copies_token_rows_a_window_at_a_time_through_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The token files are written from windows of at most _COPY_ROWS chunks read with
    read(2), from the streamed arrays and from a memory-mapped store alike (a mapped
    file's touched pages would count as resident, growing with the corpus), and the
    rows come out exactly: after deletions, replacements and additions."""
    import rag.index.backends.local as local
    import rag.index.late as late

    monkeypatch.setattr(local, "_COPY_ROWS", 4)
    monkeypatch.setattr(late, "IN_MEMORY_MAX_TOKENS", 0)  # every store memory-mapped
    windows: list[tuple[int, int]] = []
    reads: list[tuple[str, int, int]] = []
    real_windows, real_read = local._windows, local._read_rows

    def spy_windows(rows: np.ndarray):  # type: ignore[no-untyped-def]
        found = list(real_windows(rows))
        windows.extend(found)
        # The windows cover exactly the selected rows, in order.
        assert [r for lo, hi in found for r in range(lo, hi)] == rows.tolist()
        return iter(found)

    def spy_read(path: Path, offset: int, dtype, width, lo: int, hi: int):  # type: ignore[no-untyped-def]
        reads.append((Path(path).name, lo, hi))
        return real_read(path, offset, dtype, width, lo, hi)

    monkeypatch.setattr(local, "_windows", spy_windows)
    monkeypatch.setattr(local, "_read_rows", spy_read)

    first = _multi_token(30, seed=1)
    backend = create_backend(tmp_path / "index", DIM, IndexConfig(dense="flat"))
    backend.add(first)
    backend.flush()
    assert isinstance(backend, LocalBackend)
    assert isinstance(backend.tokens.embeddings, np.memmap)
    assert windows and all(hi - lo <= 4 for lo, hi in windows)
    token_reads = [(lo, hi) for name, lo, hi in reads if name != "vectors.f32"]
    assert {name for name, _, _ in reads} == {
        "tokens.f16",
        "token_ids.i32",
        "token_spans.i32",
        "vectors.f32",
    }
    assert max(hi - lo for lo, hi in token_reads) <= 4 * 5  # 4 chunks of at most 5 tokens

    windows.clear()
    reads.clear()
    second = _multi_token(7, seed=2)
    replaced = replace_tokens(first[10])
    backend.delete([first[3].id, first[4].id, first[20].id])
    backend.add([*second, replaced])
    backend.flush()
    # Old rows' embeddings come from the flushed, memory-mapped tokens.npy, read, not
    # mapped (the store holds ids and spans in memory).
    assert "tokens.npy" in {name for name, _, _ in reads}
    assert all(hi - lo <= 4 for lo, hi in windows)
    live = [r for i, r in enumerate(first) if i not in (3, 4, 10, 20)] + second + [replaced]
    assert backend.count() == len(live)
    fetched = {r.id: r for r in backend.fetch([r.id for r in live], tokens=True)}
    for record in live:
        got = fetched[record.id]
        assert np.array_equal(np.asarray(got.tokens), record.tokens)
        assert np.array_equal(got.token_ids, record.token_ids)
        assert np.array_equal(got.token_spans, record.token_spans)
        assert got.key == record.key
    backend.close()


def replace_tokens(record: ChunkRecord) -> ChunkRecord:
    """`record` with other token embeddings and key: a re-embedded chunk."""
    from dataclasses import replace

    assert record.tokens is not None
    return replace(record, tokens=(-record.tokens).astype(np.float16), key=record.key + "'")
