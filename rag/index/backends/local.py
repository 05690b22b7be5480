"""The `local` backend: FAISS, bm25s and the token store in files of the index folder.

Files (all in the index folder, swapped into place with it):
    chunks.jsonl       one row per chunk: its id, offsets, text, context, sentence spans,
                       cache key and near-duplicate ids, in corpus order
    dense.faiss        FAISS index of the pooled vectors (rag/index/dense.py)
    tokens.npy, token_ids.npy, token_spans.npy, token_offsets.npy
                       contextual token embeddings (rag/index/late.py)
    sparse/            bm25s index of each chunk's embedded text (rag/index/sparse.py)

Rows (positions in these files) are private: the contract speaks in chunk ids, mapped to
rows when the backend opens. Writing streams pooled vectors and token arrays to raw files
in the folder as records arrive, so a build holds one batch of embeddings at a time; on
`flush` they become the files above (FAISS and BM25 are built there, from the streamed
vectors and the chunk texts). Deletions and replacements are applied by `flush`, which
rewrites the files without the dead rows. Reads see the state of the last flush.

Filters: dense search passes FAISS an id selector over the rows of the allowed sources
(exact search over them when they are few, since HNSW loses recall under a tight
filter); BM25 scores of other rows are masked before the top k is taken.
"""

from __future__ import annotations

import mmap
import shutil
import threading
from array import array
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from rag.chunker import Chunk
from rag.config import IndexConfig
from rag.errors import IndexMismatchError
from rag.index.backend import (
    ChunkLinks,
    ChunkRecord,
    CorpusStats,
    Scored,
    SearchBackend,
    Sources,
)
from rag.index.dense import AUTO_HNSW_MIN, HNSW_EF_SEARCH, DenseIndex
from rag.index.late import FILES as TOKEN_FILES
from rag.index.late import TokenStore, maxsim_many, similarities
from rag.index.manifest import Manifest
from rag.index.sparse import SparseIndex
from rag.jsonl import iter_jsonl, jsonl_line, write_jsonl

CHUNKS = "chunks.jsonl"
DENSE = "dense.faiss"
SPARSE = "sparse"
FILES = (CHUNKS, DENSE, *TOKEN_FILES)
_PENDING = ".pending"  # raw streamed arrays of records added since the last flush
# Chunks whose token rows are copied per step when the token files are written: about
# 55 MB of float16 embeddings for SciFact-sized chunks (138 word pieces on average).
_COPY_ROWS = 512


class _Appender:
    """Rows of one dtype and width appended to a raw file, read back a window at a time
    (`read`). Reads go through read(2), not a memory map: pages of a mapped file that
    were touched count in the process's resident set until it is unmapped, so copying
    SciFact's 1.5 GB of token embeddings out of a map raised a build's resident peak
    by that much, growing with the corpus (measured: 0.7 GB more at a quarter of it)."""

    def __init__(self, path: Path, dtype: Any, width: int | None) -> None:
        self.path, self.dtype, self.width, self.rows = path, np.dtype(dtype), width, 0
        self._fh = path.open("wb")

    def append(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        self._fh.write(rows.tobytes())
        self.rows += len(rows)

    def read(self, lo: int, hi: int) -> np.ndarray:
        """Rows lo:hi, copied into memory."""
        self._fh.flush()
        return _read_rows(self.path, 0, self.dtype, self.width, lo, hi)

    def array(self) -> np.ndarray:
        """Every row, in memory (for the pooled vectors, which FAISS holds anyway)."""
        return self.read(0, self.rows)

    def close(self) -> None:
        self._fh.close()


def _read_rows(
    path: Path, offset: int, dtype: np.dtype, width: int | None, lo: int, hi: int
) -> np.ndarray:
    """Rows lo:hi of a raw array stored from byte `offset` of `path`, via read(2)."""
    per_row = 1 if width is None else width
    count = max(hi - lo, 0) * per_row
    if count == 0:
        return np.zeros((0,) if width is None else (0, width), dtype)
    rows = np.fromfile(path, dtype, count=count, offset=offset + lo * per_row * dtype.itemsize)
    if len(rows) != count:
        raise OSError(f"{path} ends before row {hi}")
    return rows if width is None else rows.reshape(-1, width)


class _RowSource:
    """One array of a token store, read a window of rows at a time: from its file by
    read(2) when it is memory-mapped (a large store), else sliced from memory."""

    def __init__(self, array: np.ndarray | _Appender) -> None:
        self.array = array

    def read(self, lo: int, hi: int) -> np.ndarray:
        a = self.array
        if isinstance(a, _Appender):
            return a.read(lo, hi)
        if isinstance(a, np.memmap) and isinstance(a.base, mmap.mmap) and a.filename:
            width = a.shape[1] if a.ndim == 2 else None
            return _read_rows(Path(a.filename), a.offset, a.dtype, width, lo, hi)
        return np.asarray(a[lo:hi])


class _Pending:
    """Records added since the last flush, on disk: their chunk rows (without links) in
    a JSON lines file, their arrays in raw files. In memory: each one's id and number
    of tokens (16 bytes), so adding a corpus does not hold its chunks."""

    def __init__(self, folder: Path, dimension: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.ids = array("q")
        self.token_counts = array("q")
        self._rows_path = folder / "rows.jsonl"
        self._rows = self._rows_path.open("w", encoding="utf-8")
        self.vectors = _Appender(folder / "vectors.f32", np.float32, dimension)
        self.tokens = _Appender(folder / "tokens.f16", np.float16, dimension)
        self.token_ids = _Appender(folder / "token_ids.i32", np.int32, None)
        self.spans = _Appender(folder / "token_spans.i32", np.int32, 2)

    def add(self, record: ChunkRecord) -> None:
        if record.tokens is None or record.token_ids is None or record.token_spans is None:
            raise ValueError(f"record {record.id} has no tokens; add() needs them")
        self._rows.write(jsonl_line({"id": record.id, **asdict(record.chunk), "key": record.key}))
        self.ids.append(record.id)
        self.token_counts.append(len(record.token_ids))
        self.vectors.append(np.asarray(record.vector).reshape(1, -1))
        self.tokens.append(record.tokens)
        self.token_ids.append(record.token_ids)
        self.spans.append(np.asarray(record.token_spans).reshape(-1, 2))

    def rows(self, selected: np.ndarray) -> Iterator[dict[str, Any]]:
        """The chunk rows at the ascending positions `selected`, read from the file."""
        self._rows.flush()
        wanted = iter(selected.tolist())
        next_wanted = next(wanted, None)
        for i, row in enumerate(iter_jsonl(self._rows_path)):
            if i == next_wanted:
                yield row
                next_wanted = next(wanted, None)

    def close(self) -> None:
        self._rows.close()
        for appender in (self.vectors, self.tokens, self.token_ids, self.spans):
            appender.close()
        shutil.rmtree(self.folder, ignore_errors=True)


_EXTRA = ("id", "key", "duplicates", "previous")


def _chunk_row(chunk: Chunk, cid: int, key: str, links: ChunkLinks) -> dict[str, Any]:
    return {
        "id": cid,
        **asdict(chunk),
        "key": key,
        "duplicates": list(links.duplicates),
        "previous": links.previous,
    }


def _chunk_from_row(row: dict[str, Any]) -> Chunk:
    fields = {k: v for k, v in row.items() if k not in _EXTRA}
    return Chunk(**{**fields, "sentences": tuple(tuple(s) for s in fields["sentences"])})


class LocalBackend(SearchBackend):
    kind = "local"

    def __init__(self, folder: Path, dimension: int, config: IndexConfig) -> None:
        self.folder = Path(folder)
        self.dimension = dimension
        self.config = config
        # Flushed state.
        self.chunks: list[Chunk] = []
        self.ids = np.zeros(0, dtype=np.int64)
        self.keys: list[str] = []
        self.links: list[ChunkLinks] = []
        self.dense = DenseIndex.build(np.zeros((0, dimension), np.float32), "flat")
        self.tokens = TokenStore.from_blocks([], dimension)
        self.sparse: SparseIndex | None = None
        self._row: dict[int, int] = {}
        self._rows_of: dict[str, np.ndarray] = {}
        self._stats: CorpusStats | None = None
        self._by_key: dict[str, int] | None = None
        # Changes since the last flush.
        self._pending: _Pending | None = None
        self._deleted: set[int] = set()
        self._links: dict[int, ChunkLinks] = {}
        self._last_bm25 = threading.local()  # one question's BM25 of every row, reused

    # --- lifecycle -----------------------------------------------------------------
    @classmethod
    def create(
        cls,
        folder: Path,
        dimension: int,
        config: IndexConfig,
        settings: Mapping[str, Any] | None = None,
    ) -> LocalBackend:
        if settings:
            raise ValueError(f"the local backend takes no settings, got {sorted(settings)}")
        Path(folder).mkdir(parents=True, exist_ok=True)
        return cls(folder, dimension, config)

    @classmethod
    def open(cls, folder: Path, manifest: Manifest, *, verify: bool = True) -> LocalBackend:
        backend = cls(folder, manifest.model.dimension, manifest.config.index)
        backend._load()
        return backend

    def settings(self) -> dict[str, Any]:
        return {"dense": self.dense.kind}

    def files(self) -> list[str]:
        """Files this backend wrote into the index folder (relative paths)."""
        sparse = sorted(
            str(p.relative_to(self.folder))
            for p in (self.folder / SPARSE).rglob("*")
            if p.is_file()
        )
        return [*FILES, *sparse]

    def close(self) -> None:
        if self._pending is not None:
            self._pending.close()
            self._pending = None

    # --- writing -------------------------------------------------------------------
    def add(self, records: Sequence[ChunkRecord]) -> None:
        if self._pending is None:
            self._pending = _Pending(self.folder / _PENDING, self.dimension)
        for record in records:
            self._pending.add(record)

    def delete(self, ids: Iterable[int]) -> None:
        self._deleted.update(int(i) for i in ids)

    def link(self, links: Mapping[int, ChunkLinks]) -> None:
        self._links.update({int(k): v for k, v in links.items()})

    def flush(self) -> None:
        """Write the live rows (flushed ones, then added ones; the last add of an id
        wins; deleted ids dropped) as the backend's files, and load them."""
        pending = self._pending
        written = (self.folder / CHUNKS).is_file()
        if written and pending is None and not self._deleted and not self._links:
            return
        added = np.frombuffer(pending.ids, dtype=np.int64) if pending else np.zeros(0, np.int64)
        deleted = np.fromiter(self._deleted, dtype=np.int64, count=len(self._deleted))
        # Flushed rows neither deleted nor added again; added rows that are their id's
        # last add and not deleted, in the order added. Positions, ascending.
        old = np.flatnonzero(~np.isin(self.ids, deleted) & ~np.isin(self.ids, added))
        last = len(added) - 1 - np.unique(added[::-1], return_index=True)[1]
        new = np.sort(last[~np.isin(added[last], deleted)])
        self._write(old, new, pending)
        if pending is not None:
            pending.close()
        self._pending = None
        self._deleted.clear()
        self._links.clear()
        self._load()

    def _write(self, old: np.ndarray, new: np.ndarray, pending: _Pending | None) -> None:
        staging = self.folder / ".flush"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        sources: list[tuple[np.ndarray, np.ndarray, _TokenRows]] = []
        if len(old):
            sources.append((old, self.dense.vectors(), _TokenRows.of_store(self.tokens)))
        if len(new) and pending is not None:
            sources.append((new, pending.vectors.array(), _TokenRows.of_pending(pending)))

        # Rows streamed to the file, added ones read back from the pending file: no
        # list of every chunk is made here.
        def rows() -> Iterator[dict[str, Any]]:
            for r in old.tolist():
                cid = int(self.ids[r])
                links = self._links.get(cid, self.links[r])
                yield _chunk_row(self.chunks[r], cid, self.keys[r], links)
            for row in pending.rows(new) if pending is not None else ():
                links = self._links.get(row["id"], ChunkLinks())
                yield {**row, "duplicates": list(links.duplicates), "previous": links.previous}

        write_jsonl(staging / CHUNKS, rows())
        vectors = (
            np.concatenate([np.asarray(v[sel], dtype=np.float32) for sel, v, _ in sources])
            if sources
            else np.zeros((0, self.dimension), np.float32)
        )
        DenseIndex.build(vectors, self.config.dense).save(staging / DENSE)
        del vectors
        _write_tokens(staging, [(sel, store) for sel, _, store in sources], self.dimension)
        texts = (_chunk_from_row(row).embedded for row in iter_jsonl(staging / CHUNKS))
        SparseIndex.build(texts).save(staging / SPARSE)
        for name in [*FILES, SPARSE]:
            target = self.folder / name
            if target.is_dir():
                shutil.rmtree(target)
            (staging / name).replace(target)
        shutil.rmtree(staging)

    def _load(self) -> None:
        folder = self.folder
        for name in FILES:
            if not (folder / name).is_file():
                raise IndexMismatchError(folder, f"{name} is missing")
        try:
            rows = list(iter_jsonl(folder / CHUNKS))
            self.chunks = [_chunk_from_row(r) for r in rows]
            self.ids = np.asarray([r["id"] for r in rows], dtype=np.int64)
            self.keys = [r["key"] for r in rows]
            self.links = [ChunkLinks(tuple(r["duplicates"]), r["previous"]) for r in rows]
            self.dense = DenseIndex.load(folder / DENSE)
            self.tokens = TokenStore.load(folder)
            self.sparse = SparseIndex.load(folder / SPARSE)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise IndexMismatchError(folder, f"a file cannot be read ({exc})") from None
        n = len(self.chunks)
        problems = [
            (self.dense.size != n, f"dense.faiss has {self.dense.size} vectors for {n} chunks"),
            (
                self.dense.size and self.dense.dimension != self.dimension,
                f"dense.faiss has dimension {self.dense.dimension}, the model {self.dimension}",
            ),
            (self.sparse.size != n, f"the sparse index has {self.sparse.size} chunks for {n}"),
            (
                len(self.tokens) != n or int(self.tokens.offsets[-1]) != len(self.tokens.ids),
                f"the token store has {len(self.tokens)} chunks for {n}",
            ),
            (
                not len(self.tokens.ids) == len(self.tokens.spans) == len(self.tokens.embeddings),
                "the token store's files disagree in length",
            ),
            (len(set(self.ids.tolist())) != n, "chunks.jsonl repeats a chunk id"),
        ]
        for failed, problem in problems:
            if failed:
                raise IndexMismatchError(folder, problem)
        self._row = {cid: r for r, cid in enumerate(self.ids.tolist())}
        by_source: dict[str, list[int]] = {}
        for r, chunk in enumerate(self.chunks):
            by_source.setdefault(chunk.source, []).append(r)
        self._rows_of = {s: np.asarray(r, dtype=np.int64) for s, r in by_source.items()}
        self._stats = None
        self._by_key = None
        self._last_bm25 = threading.local()

    # --- reading -------------------------------------------------------------------
    def _allowed(self, sources: Sources) -> np.ndarray | None:
        if sources is None:
            return None
        rows = [self._rows_of[s] for s in sources if s in self._rows_of]
        return np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)

    def dense_search(self, vector: np.ndarray, k: int, sources: Sources = None) -> Scored:
        allowed = self._allowed(sources)
        if not len(self.chunks) or (allowed is not None and not len(allowed)) or k < 1:
            return []
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        if allowed is None:
            scores, rows = self.dense.search(query, k)
            pairs = zip(rows[0].tolist(), scores[0].tolist(), strict=True)
        elif self.dense.kind == "hnsw" and len(allowed) >= AUTO_HNSW_MIN:
            params = faiss.SearchParametersHNSW(
                sel=faiss.IDSelectorBatch(allowed), efSearch=HNSW_EF_SEARCH
            )
            scores, rows = self.dense.index.search(query, min(k, len(allowed)), params=params)
            pairs = zip(rows[0].tolist(), scores[0].tolist(), strict=True)
        else:  # exact over the allowed rows: few of them, or a flat index anyway
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))
            flat = self.dense.index if self.dense.kind == "flat" else None
            if flat is not None:
                scores, rows = flat.search(query, min(k, len(allowed)), params=params)
                pairs = zip(rows[0].tolist(), scores[0].tolist(), strict=True)
            else:
                sims = self.dense.index.reconstruct_batch(allowed) @ query[0]
                top = np.argsort(-sims, kind="stable")[:k]
                pairs = zip(allowed[top].tolist(), sims[top].tolist(), strict=True)
        return [(int(self.ids[r]), float(s)) for r, s in pairs if r >= 0]

    def _bm25(self, terms: Sequence[str]) -> np.ndarray:
        """BM25 of every row; the retriever asks for the top k and then the candidates'
        scores for the same terms, so the last question's array is kept per thread."""
        key = tuple(terms)
        cached = getattr(self._last_bm25, "value", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        assert self.sparse is not None
        scores = self.sparse.scores(list(terms)) if len(self.chunks) else np.zeros(0)
        self._last_bm25.value = (key, scores)
        return scores

    def lexical_search(self, terms: Sequence[str], k: int, sources: Sources = None) -> Scored:
        n = len(self.chunks)
        if not n or k < 1:
            return []
        scores = self._bm25(terms)
        allowed = self._allowed(sources)
        if allowed is not None:
            masked = np.zeros_like(scores)
            masked[allowed] = scores[allowed]
            scores = masked
        k = min(k, n)
        top = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self.ids[r]), float(scores[r])) for r in top.tolist() if scores[r] > 0]

    def lexical_scores(self, terms: Sequence[str], ids: Sequence[int]) -> np.ndarray:
        if not ids:
            return np.zeros(0, dtype=np.float32)
        scores = self._bm25(terms)
        rows = [self._row.get(int(i), -1) for i in ids]
        if len(scores) == 0:
            return np.zeros(len(rows), dtype=np.float32)
        # -1 (an id the backend lacks) reads the last row; masked to 0 below.
        found = scores[np.asarray(rows, dtype=np.int64)]
        return np.where(np.asarray(rows) >= 0, found, 0).astype(scores.dtype)

    def _record(self, r: int, vector: np.ndarray, tokens: bool) -> ChunkRecord:
        chunk, cid = self.chunks[r], int(self.ids[r])
        links = self.links[r]
        if not tokens:
            return ChunkRecord(
                cid,
                chunk,
                vector,
                self.keys[r],
                duplicates=links.duplicates,
                previous=links.previous,
            )
        a, b = int(self.tokens.offsets[r]), int(self.tokens.offsets[r + 1])
        return ChunkRecord(
            cid,
            chunk,
            vector,
            self.keys[r],
            tokens=self.tokens.embeddings[a:b],
            token_ids=self.tokens.ids[a:b],
            token_spans=self.tokens.spans[a:b],
            duplicates=links.duplicates,
            previous=links.previous,
        )

    def fetch(self, ids: Sequence[int], *, tokens: bool = False) -> list[ChunkRecord]:
        rows = [r for r in (self._row.get(int(i)) for i in ids) if r is not None]
        if not rows:
            return []
        vectors = self.dense.index.reconstruct_batch(np.asarray(rows, dtype=np.int64))
        return [self._record(r, v, tokens) for r, v in zip(rows, vectors, strict=True)]

    def lookup_keys(self, keys: Collection[str]) -> dict[str, ChunkRecord]:
        if self._by_key is None:
            self._by_key = {key: r for r, key in enumerate(self.keys)}
        rows = sorted({self._by_key[k] for k in keys if k in self._by_key})
        found = self.fetch([int(self.ids[r]) for r in rows], tokens=True)
        return {record.key: record for record in found}

    def text_keys(self) -> set[str]:
        return set(self.keys)

    def count(self) -> int:
        return len(self.chunks)

    def stats(self) -> CorpusStats:
        if self._stats is None:
            assert self.sparse is not None
            model = self.sparse.model
            vocab, indptr = model.vocab_dict, model.scores["indptr"]

            def term_df(term: str) -> int:
                tid = vocab.get(term)
                return 0 if tid is None else int(indptr[tid + 1] - indptr[tid])

            self._stats = CorpusStats(len(self.chunks), self.tokens.document_frequency, term_df)
        return self._stats

    def ping(self) -> None:
        """Files on local disk, already open: always reachable."""

    # --- late interaction: the in-memory fast path ------------------------------------
    def prepare(self, queries: Sequence[np.ndarray]) -> list[Any]:
        """Each question's cosines with every token of an in-memory store, from one
        product for the batch (rag.index.late.similarities)."""
        return similarities(list(queries), self.tokens)

    def late_interaction(
        self,
        query: np.ndarray,
        weights: np.ndarray,
        records: Sequence[ChunkRecord],
        prepared: Any = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        rows = [self._row[r.id] for r in records]
        order = np.argsort(rows, kind="stable")  # in row order, as the store is laid out
        sorted_rows = [rows[i] for i in order]
        own_from = np.asarray([records[i].chunk.text_offset for i in order], dtype=np.int64)
        own, full = maxsim_many(query, weights, self.tokens, sorted_rows, own_from, prepared)
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        return np.asarray(own)[back], np.asarray(full)[back]


class _TokenRows:
    """A token store's rows as `_write_tokens` copies them: offsets in memory, the three
    arrays read a window of rows at a time."""

    def __init__(
        self, offsets: np.ndarray, embeddings: _RowSource, ids: _RowSource, spans: _RowSource
    ) -> None:
        self.offsets, self.embeddings, self.ids, self.spans = offsets, embeddings, ids, spans

    @classmethod
    def of_store(cls, store: TokenStore) -> _TokenRows:
        return cls(
            store.offsets,
            _RowSource(store.embeddings),
            _RowSource(store.ids),
            _RowSource(store.spans),
        )

    @classmethod
    def of_pending(cls, pending: _Pending) -> _TokenRows:
        offsets = np.zeros(len(pending.token_counts) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum(pending.token_counts)
        return cls(
            offsets,
            _RowSource(pending.tokens),
            _RowSource(pending.token_ids),
            _RowSource(pending.spans),
        )


_TOKEN_FILES = (
    ("tokens.npy", "embeddings"),
    ("token_ids.npy", "ids"),
    ("token_spans.npy", "spans"),
)


def _write_tokens(
    folder: Path, sources: list[tuple[list[int], _TokenRows]], dimension: int
) -> None:
    """The selected rows of each token store, concatenated, as the token store's .npy
    files: read and written a window of at most `_COPY_ROWS` chunks at a time through
    read(2) and write(2), so this takes one window's memory whatever the corpus (no
    memory map: the touched pages of a mapped file count as resident)."""
    counts = [np.diff(rows.offsets)[sel] for sel, rows in sources]
    lengths = np.concatenate(counts) if counts else np.zeros(0, dtype=np.int64)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(lengths)
    total = int(offsets[-1])
    layout = {  # attribute: (dtype, shape of the whole array)
        "embeddings": (np.dtype(np.float16), (total, dimension)),
        "ids": (np.dtype(np.int32), (total,)),
        "spans": (np.dtype(np.int32), (total, 2)),
    }
    with ExitStack() as stack:
        files = {}
        for name, attr in _TOKEN_FILES:
            dtype, shape = layout[attr]
            fh = stack.enter_context((folder / name).open("wb"))
            header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False}
            np.lib.format.write_array_header_1_0(fh, {**header, "shape": shape})
            files[attr] = fh
        written = 0
        for sel, rows in sources:
            for lo, hi in _windows(sel):
                a, b = int(rows.offsets[lo]), int(rows.offsets[hi])
                for attr, fh in files.items():
                    dtype, shape = layout[attr]
                    part = np.ascontiguousarray(getattr(rows, attr).read(a, b), dtype=dtype)
                    if part.shape != (b - a, *shape[1:]):
                        raise ValueError(f"token rows {a}:{b} read as {part.shape}")
                    fh.write(part.tobytes())
                written += b - a
    if written != total:
        raise ValueError(f"wrote {written} token rows of {total}")
    np.save(folder / "token_offsets.npy", offsets)


def _windows(rows: np.ndarray) -> Iterator[tuple[int, int]]:
    """Runs of consecutive rows (lo, hi), each of at most `_COPY_ROWS` rows, in order."""
    start = 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or rows[i] != rows[i - 1] + 1 or i - start == _COPY_ROWS:
            yield int(rows[start]), int(rows[i - 1]) + 1
            start = i
