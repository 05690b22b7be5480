"""Parts of the Qdrant backend that are not the backend itself: how qdrant-client's
errors become domain errors, the embedded store's one-process lock, fetched token
embeddings held in memory, and the corpus statistics file."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from qdrant_client import QdrantClient
from qdrant_client.http.exceptions import UnexpectedResponse

from rag.errors import BackendUnavailableError
from rag.index.backend import ChunkRecord, CorpusStats, StatsCounter
from rag.text import tokenize

log = logging.getLogger(__name__)

ENV_URL = "RAG_QDRANT_URL"
ENV_API_KEY = "RAG_QDRANT_API_KEY"
STORE = "qdrant"  # the embedded store, inside the index folder


def unavailable(where: str, exc: BaseException) -> BackendUnavailableError:
    return BackendUnavailableError(
        f"Qdrant at {where} does not answer ({type(exc).__name__}: {exc}); start it, or "
        f"point {ENV_URL} (rag index --qdrant-url) at a running one"
    )


def is_missing(exc: BaseException) -> bool:
    if isinstance(exc, UnexpectedResponse):
        return exc.status_code == 404
    return isinstance(exc, ValueError) and "not found" in str(exc)


class TokenCache:
    """Token arrays of fetched chunks by id, least recently used dropped first."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes, self.bytes = max_bytes, 0
        self.items: OrderedDict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = OrderedDict()
        # The server ranks on more than one thread.
        self._lock = threading.Lock()

    def get(self, cid: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        with self._lock:
            item = self.items.get(cid)
            if item is not None:
                self.items.move_to_end(cid)
            return item

    def put(self, cid: int, item: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        with self._lock:
            old = self.items.pop(cid, None)
            if old is not None:
                self.bytes -= sum(a.nbytes for a in old)
            self.items[cid] = item
            self.bytes += sum(a.nbytes for a in item)
            while self.bytes > self.max_bytes and self.items:
                _, old = self.items.popitem(last=False)
                self.bytes -= sum(a.nbytes for a in old)

    def clear(self) -> None:
        with self._lock:
            self.items.clear()
            self.bytes = 0


class StatsFile:
    """Corpus statistics the engine does not expose, saved as qdrant-stats.json."""

    def __init__(self) -> None:
        self.counter = StatsCounter()
        self.terms_total = 0  # BM25 terms over all chunks, for avgdl
        self.avgdl = 1.0  # the avgdl the stored sparse vectors were computed with
        self._stats: CorpusStats | None = None

    def add(self, records: Iterable[ChunkRecord], sign: int = 1) -> None:
        records = list(records)
        self.counter.add(records, sign)
        self.terms_total += sign * sum(len(tokenize(r.chunk.embedded)) for r in records)
        self._stats = None

    def target_avgdl(self) -> float:
        n = self.counter.chunks
        return self.terms_total / n if n and self.terms_total else 1.0

    def stats(self) -> CorpusStats:
        if self._stats is None:
            self._stats = self.counter.stats()
        return self._stats

    def save(self, path: Path) -> None:
        c = self.counter
        data = {
            "chunks": c.chunks,
            "terms_total": self.terms_total,
            "avgdl": self.avgdl,
            "pieces": {str(k): v for k, v in sorted(c.pieces.items()) if v},
            "terms": {k: v for k, v in sorted(c.terms.items()) if v},
        }
        path.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> StatsFile:
        data = json.loads(path.read_text(encoding="utf-8"))
        stats = cls()
        stats.counter = StatsCounter(
            chunks=int(data["chunks"]),
            pieces={int(k): int(v) for k, v in data["pieces"].items()},
            terms={str(k): int(v) for k, v in data["terms"].items()},
        )
        stats.terms_total = int(data["terms_total"])
        stats.avgdl = float(data["avgdl"])
        return stats


def open_embedded(path: Path) -> tuple[QdrantClient, Path | None]:
    """A client on the embedded store at `path`, or on a private copy of it when another
    process holds the store (local mode allows one process per store)."""
    try:
        return QdrantClient(path=str(path)), None
    except RuntimeError as exc:
        if "already accessed" not in str(exc):
            raise
    copy = Path(tempfile.mkdtemp(prefix="rag-qdrant-copy-"))
    shutil.copytree(path, copy / STORE, ignore=shutil.ignore_patterns(".lock"))
    log.info("embedded Qdrant store %s is held by another process; reading a copy", path)
    return QdrantClient(path=str(copy / STORE)), copy
