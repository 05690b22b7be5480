"""Points of a Qdrant build upserted by other processes than the driver (the Ray
build's writer actors, rag/index/executors/ray_writer.py), and what the driver does
around them.

    with backend.remote_writes() as spec:       # the driver lends the new collection
        writer = spec.open()                     # in each writer process
        writer.write(records)                    # batched upserts of whole points
        writer.close()
    backend.adopt(light records)                 # the driver: statistics and counts
    backend.flush()                              # sparse vectors, links; then publish

A worker writes each point whole (dense vector, token multivector, payload: `to_point`,
the function the driver's own upserts use) except what is only known once every chunk
is in: its BM25 vector is written with the average length the backend's statistics
held when the collection was lent (`WriterSpec.avgdl`), and rewritten by the driver's
`flush` with the corpus's own (`QdrantBackend._rewrite_sparse`, as when a corpus
grows); its duplicate and neighbour links are set by `flush` too (`link`). Nothing is
visible to readers before `publish` moves the alias, so a build that fails or is
killed part-way leaves the previous collection serving.

Embedded mode (`QdrantClient(path=...)`) allows one process per store (a file lock).
While the collection is lent, the driver's client is closed and exactly one writer
holds the store (`WriterSpec.concurrent` is False: the executor runs one writer, on
the driver's node, where the store is); when the pipeline has ended, the driver waits
for the writer to let the lock go (`wait_for_store`) and opens the store again. With a
server URL any number of writers upsert at once, through the same client calls.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from qdrant_client import QdrantClient

from rag.errors import BackendUnavailableError
from rag.index.backend import ChunkRecord
from rag.index.backends.qdrant_points import to_point
from rag.index.backends.qdrant_support import ENV_API_KEY

if TYPE_CHECKING:
    from rag.index.backends.qdrant_settings import CollectionSettings
    from rag.index.backends.qdrant_support import StatsFile

# How long the driver waits for the writer to release the embedded store once the
# pipeline has ended (Ray closes the writer as it shuts the pipeline down, a few
# hundred ms here; the lock also goes when the writer's process exits).
STORE_RELEASE_SECONDS = 120.0


def open_client(url: str | None, store: Path | None) -> QdrantClient:
    """A client on the server at `url`, else on the embedded store at `store`."""
    if url:
        # No version handshake on connect: open() pings the collection and says what
        # is wrong; an unreachable server would only add a warning here.
        return QdrantClient(
            url=url, api_key=os.environ.get(ENV_API_KEY) or None, check_compatibility=False
        )
    if store is None:
        raise ValueError("an embedded Qdrant client needs the store's path")
    return QdrantClient(path=str(store))


def wait_for_store(store: Path, timeout: float = STORE_RELEASE_SECONDS) -> None:
    """Return once no process holds the embedded store's lock (qdrant-client's local
    mode locks `<store>/.lock` with flock), or raise after `timeout` seconds."""
    lock = store / ".lock"
    deadline = time.monotonic() + timeout
    while True:
        try:
            with lock.open("r+") as fh:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    pass
                else:
                    fcntl.flock(fh, fcntl.LOCK_UN)
                    return
        except FileNotFoundError:
            return  # never opened: nothing holds it
        if time.monotonic() > deadline:
            raise BackendUnavailableError(
                f"the embedded Qdrant store {store} is still held by another process "
                f"{timeout:.0f} s after the build's writer finished; the previous index is "
                "untouched, run the build again"
            )
        time.sleep(0.05)


def writer_name() -> str:
    """Who wrote a point: `host:pid` of the writing process."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class WriterSpec:
    """What a writer process needs to upsert into a build's new collection (picklable:
    sent to every writer). Holds no secret: a server's API key is read from the
    writer's own environment (RAG_QDRANT_API_KEY)."""

    collection: str
    url: str | None
    store: str | None  # the embedded store's folder (url None)
    avgdl: float  # the BM25 length normalisation the written sparse vectors use
    upsert_batch: int

    @property
    def concurrent(self) -> bool:
        """Whether more than one writer may upsert at once (a server; not an embedded
        store, which one process holds at a time)."""
        return bool(self.url)

    def open(self) -> PointWriter:
        return PointWriter(self)


class PointWriter:
    """Upserts whole points into the lent collection, `upsert_batch` at a time."""

    def __init__(self, spec: WriterSpec) -> None:
        self.spec = spec
        self.client: QdrantClient | None = open_client(
            spec.url, Path(spec.store) if spec.store else None
        )
        self.written = 0

    def write(self, records: Sequence[ChunkRecord]) -> None:
        if self.client is None:
            raise RuntimeError("this writer is closed")
        size = self.spec.upsert_batch
        for lo in range(0, len(records), size):
            points = [to_point(r, None, self.spec.avgdl) for r in records[lo : lo + size]]
            self.client.upsert(self.spec.collection, points, wait=True)
            self.written += len(points)

    def close(self) -> None:
        """Release the client (in embedded mode, the store's lock)."""
        if self.client is not None:
            client, self.client = self.client, None
            client.close()


class RemoteWrites:
    """The driver's side of worker writes, mixed into QdrantBackend (which provides the
    attributes below); kept here so the backend module stays one screenful per part."""

    client: QdrantClient
    folder: Path
    collection: str
    url: str | None
    collection_settings: CollectionSettings
    _stats: StatsFile
    _stored: int

    @contextlib.contextmanager
    def remote_writes(self) -> Iterator[WriterSpec]:
        """Lend the build's new collection to writer processes for the block. In
        embedded mode the driver's client is closed meanwhile, and reopened on a normal
        exit once the writers have let the store go. On an error the writers may still
        be running: the client stays closed, and the build discards the collection."""
        from rag.index.backends.qdrant_support import STORE

        store = None if self.url else self.folder / STORE
        spec = WriterSpec(
            collection=self.collection,
            url=self.url,
            store=None if store is None else str(store),
            avgdl=self._stats.avgdl,
            upsert_batch=self.collection_settings.upsert_batch,
        )
        if store is None:
            yield spec
            return
        self.client.close()
        yield spec
        wait_for_store(store)
        self.client = open_client(None, store)

    def adopt(self, records: Sequence[ChunkRecord]) -> None:
        """Count records a writer process has upserted (records without token
        embeddings; their token ids feed the word-piece statistics). `flush` then
        rewrites their sparse vectors for the corpus's average length and sets links."""
        for record in records:
            if record.token_ids is None:
                raise ValueError(f"record {record.id} has no token ids; adopt() needs them")
        self._stats.add(records)
        self._stored += len(records)
