"""The `qdrant` backend: every chunk is one point of a Qdrant collection, with named
vectors `dense` (cosine, HNSW), `bm25` (sparse, tf here and IDF by Qdrant, see
qdrant_sparse.py) and `tokens` (MaxSim multivector, float16, on disk), and the chunk in
its payload (qdrant_points.py). Settings: deploy/qdrant/collection.json. Ranking stays
in rag/: candidates come from Qdrant, late interaction runs here on fetched tokens.
docs/scaling.md has the architecture, sizing and timings.

Location: a server or cluster (`RAG_QDRANT_URL` / `rag index --qdrant-url`, API key
from `RAG_QDRANT_API_KEY`, never written anywhere), else an embedded store (qdrant-client's
local mode) in `qdrant/` inside the index folder.

Builds write a new collection `<alias>-<build>`; `publish` moves the alias to it in one
`update_collection_aliases` call, `retire` deletes the other `<alias>-*` collections.
Readers open the concrete collection the manifest names, not the alias: the index
folder's documents and statistics belong to one build, and reading another build's
points through a moved alias would mix two. A build killed before the folder swap
leaves the old manifest and collection untouched. Embedded mode allows one process per
store (a file lock): a process finding the store held opens a private copy of it.
Statistics Qdrant does not expose (word-piece and term document frequencies, BM25
lengths) are kept in `qdrant-stats.json` in the index folder.
"""

from __future__ import annotations

import functools
import logging
import os
import pickle
import shutil
import uuid
import warnings
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from rag.chunker import Chunk
from rag.config import IndexConfig
from rag.errors import BackendUnavailableError, IndexMismatchError, RagError
from rag.index.backend import (
    ChunkLinks,
    ChunkRecord,
    CorpusStats,
    Scored,
    SearchBackend,
    Sources,
    maxsim_records,
)
from rag.index.backends import qdrant_sparse
from rag.index.backends.qdrant_points import from_point, link_payload, sparse, to_point
from rag.index.backends.qdrant_settings import (
    DENSE,
    SPARSE,
    TOKENS,
    CollectionSettings,
    load_settings,
)
from rag.index.backends.qdrant_support import (
    ENV_URL,
    STORE,
    StatsFile,
    TokenCache,
    is_missing,
    open_embedded,
    unavailable,
)
from rag.index.backends.qdrant_writer import RemoteWrites, open_client
from rag.index.manifest import Manifest
from rag.text import tokenize

log = logging.getLogger(__name__)

STATS = "qdrant-stats.json"
_PENDING = ".qdrant-pending"  # records added since the last flush, pickled per batch
DEFAULT_ALIAS = "rag"
# Token embeddings of fetched chunks kept in this process (a build's collection never
# changes once published, so they cannot go stale): about 4,700 chunks of 54 KB.
TOKEN_CACHE_BYTES = 256 * 2**20
_SCROLL = 256
_CHUNK_FIELDS = tuple(Chunk.__dataclass_fields__)

T = TypeVar("T")


def _guarded(method: Callable[..., T]) -> Callable[..., T]:
    """Turn what qdrant-client raises when the server is down, or the collection is
    gone, into BackendUnavailableError (503 at the HTTP layer)."""

    @functools.wraps(method)
    def wrapper(self: QdrantBackend, *args: Any, **kwargs: Any) -> T:
        try:
            return method(self, *args, **kwargs)
        except (UnexpectedResponse, ResponseHandlingException, OSError, RuntimeError) as exc:
            if is_missing(exc):
                raise self._missing() from None
            raise unavailable(self.location, exc) from None
        except ValueError as exc:
            if is_missing(exc):
                raise self._missing() from None
            raise

    return wrapper


def _source_filter(sources: Sources) -> models.Filter | None:
    if sources is None:
        return None
    return models.Filter(
        must=[models.FieldCondition(key="source", match=models.MatchAny(any=sorted(sources)))]
    )


class QdrantBackend(RemoteWrites, SearchBackend):
    kind = "qdrant"

    def __init__(
        self,
        folder: Path,
        dimension: int,
        client: QdrantClient,
        *,
        collection: str,
        alias: str,
        url: str | None,
        settings: CollectionSettings,
        stats: StatsFile,
        copy: Path | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.dimension = dimension
        self.client = client
        self.collection = collection
        self.alias = alias
        self.url = url
        self.collection_settings = settings
        self._stats = stats
        self._copy = copy
        self._tokens = TokenCache(TOKEN_CACHE_BYTES)
        self._pending: list[Path] = []
        self._deleted: set[int] = set()
        self._links: dict[int, ChunkLinks] = {}
        self._stored = 0  # points upserted by this process or found at open

    @property
    def location(self) -> str:
        return self.url or f"embedded store {self.folder / STORE}"

    def _missing(self) -> BackendUnavailableError:
        return BackendUnavailableError(
            f"Qdrant collection {self.collection!r} is missing at {self.location}; rebuild "
            f"the index with: rag index --backend qdrant --out {self.folder}"
        )

    # --- lifecycle -----------------------------------------------------------------
    @classmethod
    def create(
        cls,
        folder: Path,
        dimension: int,
        config: IndexConfig,
        settings: Mapping[str, Any] | None = None,
    ) -> QdrantBackend:
        options = dict(settings or {})
        unknown = set(options) - {"url", "collection", "settings_file"}
        if unknown:
            raise ValueError(
                f"unknown qdrant backend settings {sorted(unknown)}; "
                "valid choices: ['collection', 'settings_file', 'url']"
            )
        url = options.get("url") or os.environ.get(ENV_URL) or None
        alias = options.get("collection") or DEFAULT_ALIAS
        collection_settings = load_settings(options.get("settings_file"), dimension)
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        client = cls._client(url, folder)
        backend = cls(
            folder,
            dimension,
            client,
            collection=f"{alias}-{uuid.uuid4().hex[:12]}",
            alias=alias,
            url=url,
            settings=collection_settings,
            stats=StatsFile(),
        )
        backend._create_collection()
        return backend

    @staticmethod
    def _client(url: str | None, folder: Path) -> QdrantClient:
        return open_client(url, None if url else folder / STORE)

    @_guarded
    def _create_collection(self) -> None:
        s = self.collection_settings
        self.client.create_collection(self.collection, **s.create_kwargs())
        with warnings.catch_warnings():
            # Local mode says payload indexes have no effect there (it scans); a server
            # needs them for fast filters, so they are created all the same.
            warnings.simplefilter("ignore", UserWarning)
            for field, schema in s.payload_indexes.items():
                self.client.create_payload_index(self.collection, field, schema)

    @classmethod
    def open(cls, folder: Path, manifest: Manifest, *, verify: bool = True) -> QdrantBackend:
        folder = Path(folder)
        saved = manifest.backend.settings
        try:
            collection, alias = str(saved["collection"]), str(saved["alias"])
        except KeyError as exc:
            raise IndexMismatchError(folder, f"manifest.json's backend lacks {exc}") from None
        url = saved.get("url") or None
        if url:
            # Replicas may reach the cluster by another address than the build did.
            url = os.environ.get(ENV_URL) or url
        elif not (folder / STORE).is_dir():
            raise IndexMismatchError(folder, f"the embedded Qdrant store {STORE}/ is missing")
        try:
            stats = StatsFile.load(folder / STATS)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexMismatchError(folder, f"{STATS} cannot be read ({exc})") from None
        dimension = manifest.model.dimension
        try:
            # The collection's own vector sizes are checked against the model below.
            settings = load_settings(saved.get("settings_file"))
        except RagError as exc:
            raise IndexMismatchError(folder, str(exc)) from None
        copy = None
        try:
            if url:
                client = cls._client(url, folder)
            else:
                client, copy = open_embedded(folder / STORE)
        except (OSError, RuntimeError, ValueError) as exc:
            raise unavailable(url or str(folder / STORE), exc) from None
        backend = cls(
            folder,
            dimension,
            client,
            collection=collection,
            alias=alias,
            url=url,
            settings=settings,
            stats=stats,
            copy=copy,
        )
        try:
            backend._check(manifest)
        except BaseException:
            backend.close()
            raise
        return backend

    def _check(self, manifest: Manifest) -> None:
        """The collection exists, has the model's vector size and the manifest's count."""
        self.ping()
        info = self._info()
        vectors = info.config.params.vectors
        size = vectors[DENSE].size if isinstance(vectors, dict) and DENSE in vectors else None
        if size != self.dimension:
            raise IndexMismatchError(
                self.folder,
                f"Qdrant collection {self.collection!r} has {DENSE!r} vectors of size {size}, "
                f"the model {manifest.model.name!r} gives {self.dimension}",
            )
        self._stored = self._count_points()
        if self._stored != manifest.counts.chunks:
            raise IndexMismatchError(
                self.folder,
                f"Qdrant collection {self.collection!r} holds {self._stored} points, "
                f"the manifest says {manifest.counts.chunks} chunks",
            )

    @_guarded
    def _info(self) -> models.CollectionInfo:
        return self.client.get_collection(self.collection)

    def settings(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "alias": self.alias,
            "location": "url" if self.url else "embedded",
            "url": self.url,
            "settings_file": str(self.collection_settings.path),
        }

    def files(self) -> list[str]:
        return [STATS]

    @_guarded
    def publish(self) -> None:
        aliases = {a.alias_name for a in self.client.get_aliases().aliases}
        ops: list[Any] = []
        if self.alias in aliases:
            ops.append(
                models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=self.alias))
            )
        ops.append(
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(
                    collection_name=self.collection, alias_name=self.alias
                )
            )
        )
        # One call: readers of the alias see the old collection or the new one.
        self.client.update_collection_aliases(ops)

    def retire(self, previous: Manifest) -> None:
        """Delete the previous build's collection, and any other `<alias>-*` one that
        is not this build's (a killed build's leftovers). In embedded mode the store
        holds this build's collection only: the previous store left with the previous
        index folder."""
        try:
            for c in self.client.get_collections().collections:
                if c.name.startswith(f"{self.alias}-") and c.name != self.collection:
                    self.client.delete_collection(c.name)
        except (UnexpectedResponse, ResponseHandlingException, OSError) as exc:
            log.warning("could not remove old Qdrant collections: %s", exc)

    def discard(self) -> None:
        if not self.url:
            return  # the store goes with the staging folder
        try:
            self.client.delete_collection(self.collection)
        except (UnexpectedResponse, ResponseHandlingException, OSError) as exc:
            log.warning("could not remove the unpublished collection %s: %s", self.collection, exc)

    def close(self) -> None:
        for path in self._pending:
            path.unlink(missing_ok=True)
        self._pending.clear()
        shutil.rmtree(self.folder / _PENDING, ignore_errors=True)
        try:
            self.client.close()
        finally:
            if self._copy is not None:
                shutil.rmtree(self._copy, ignore_errors=True)
                self._copy = None

    # --- writing -------------------------------------------------------------------
    def add(self, records: Sequence[ChunkRecord]) -> None:
        """Spool the records to the staging folder: their sparse vectors need the avgdl
        of the whole corpus, known at `flush`."""
        for record in records:
            if record.tokens is None or record.token_ids is None or record.token_spans is None:
                raise ValueError(f"record {record.id} has no tokens; add() needs them")
        spool = self.folder / _PENDING
        spool.mkdir(exist_ok=True)
        path = spool / f"{len(self._pending):06d}.pkl"
        with path.open("wb") as fh:
            pickle.dump(list(records), fh, protocol=pickle.HIGHEST_PROTOCOL)
        self._pending.append(path)

    def delete(self, ids: Iterable[int]) -> None:
        self._deleted.update(int(i) for i in ids)

    def link(self, links: Mapping[int, ChunkLinks]) -> None:
        self._links.update({int(k): v for k, v in links.items()})

    def _spooled(self) -> Iterator[list[ChunkRecord]]:
        for path in self._pending:
            with path.open("rb") as fh:
                yield pickle.load(fh)

    @_guarded
    def flush(self) -> None:
        """Apply deletions, replacements and additions, then rewrite sparse vectors if
        the corpus's avgdl moved, then links; save the statistics."""
        last: dict[int, tuple[int, int]] = {}  # id -> (batch, position) of its last add
        for b, batch in enumerate(self._spooled()):
            for p, record in enumerate(batch):
                last[record.id] = (b, p)
        gone = sorted(self._deleted | set(last)) if self._stored else []
        if gone:
            old = self.fetch(gone, tokens=True)
            self._stats.add(old, sign=-1)
            dead = [r.id for r in old if r.id in self._deleted or r.id in last]
            if dead:
                self.client.delete(self.collection, models.PointIdsList(points=dead), wait=True)
                self._stored -= len(dead)
        kept = [
            [r for p, r in enumerate(batch) if last[r.id] == (b, p) and r.id not in self._deleted]
            for b, batch in enumerate(self._spooled())
        ]
        for batch in kept:
            self._stats.add(batch)
        avgdl = self._stats.target_avgdl()
        if self._stored and avgdl != self._stats.avgdl:
            self._rewrite_sparse(avgdl)
        self._stats.avgdl = avgdl
        size = self.collection_settings.upsert_batch
        for batch in kept:
            for lo in range(0, len(batch), size):
                points = [to_point(r, self._links.get(r.id), avgdl) for r in batch[lo : lo + size]]
                self.client.upsert(self.collection, points, wait=True)
                self._stored += len(points)
        # Links of points already stored (by an earlier flush, or by remote writers).
        stored_links = [(k, v) for k, v in self._links.items() if k not in last]
        for lo in range(0, len(stored_links), size):
            self.client.batch_update_points(
                self.collection,
                [
                    models.SetPayloadOperation(
                        set_payload=models.SetPayload(payload=link_payload(v), points=[k])
                    )
                    for k, v in stored_links[lo : lo + size]
                ],
            )
        self._stats.save(self.folder / STATS)
        self._pending.clear()
        shutil.rmtree(self.folder / _PENDING, ignore_errors=True)
        self._deleted.clear()
        self._links.clear()
        self._tokens.clear()

    def _rewrite_sparse(self, avgdl: float) -> None:
        """New sparse vectors for every stored point (the length normalisation moved)."""
        offset = None
        while True:
            records, offset = self.client.scroll(
                self.collection,
                limit=_SCROLL,
                offset=offset,
                with_payload=["text", "context"],
                with_vectors=False,
            )
            updates = []
            for r in records:
                payload = r.payload or {}
                context, text = payload.get("context", ""), payload.get("text", "")
                embedded = f"{context}\n{text}" if context else text
                vector = qdrant_sparse.document_vector(tokenize(embedded), avgdl)
                updates.append(models.PointVectors(id=r.id, vector={SPARSE: sparse(vector)}))
            if updates:
                self.client.update_vectors(self.collection, updates, wait=True)
            if offset is None:
                return

    # --- reading -------------------------------------------------------------------
    @_guarded
    def dense_search(self, vector: np.ndarray, k: int, sources: Sources = None) -> Scored:
        if k < 1 or (sources is not None and not sources):
            return []
        found = self.client.query_points(
            self.collection,
            query=np.asarray(vector, dtype=np.float32).ravel().tolist(),
            using=DENSE,
            limit=k,
            query_filter=_source_filter(sources),
            # Local mode searches exactly and warns about search params; a server takes them.
            search_params=(
                models.SearchParams(hnsw_ef=self.collection_settings.hnsw_ef) if self.url else None
            ),
            with_payload=False,
        ).points
        return [(int(p.id), float(p.score)) for p in found]

    @_guarded
    def lexical_search(self, terms: Sequence[str], k: int, sources: Sources = None) -> Scored:
        query = qdrant_sparse.query_vector(list(terms))
        if k < 1 or not query.indices or (sources is not None and not sources):
            return []
        found = self.client.query_points(
            self.collection,
            query=sparse(query),
            using=SPARSE,
            limit=k,
            query_filter=_source_filter(sources),
            with_payload=False,
        ).points
        return [(int(p.id), float(p.score)) for p in found if p.score > 0]

    @_guarded
    def lexical_scores(self, terms: Sequence[str], ids: Sequence[int]) -> np.ndarray:
        scores = np.zeros(len(ids), dtype=np.float32)
        query = qdrant_sparse.query_vector(list(terms))
        if not len(ids) or not query.indices:
            return scores
        wanted = sorted({int(i) for i in ids})
        found = self.client.query_points(
            self.collection,
            query=sparse(query),
            using=SPARSE,
            limit=len(wanted),
            query_filter=models.Filter(must=[models.HasIdCondition(has_id=wanted)]),
            with_payload=False,
        ).points
        by_id = {int(p.id): float(p.score) for p in found}
        for n, i in enumerate(ids):
            scores[n] = by_id.get(int(i), 0.0)
        return scores

    @_guarded
    def fetch(self, ids: Sequence[int], *, tokens: bool = False) -> list[ChunkRecord]:
        wanted = list(dict.fromkeys(int(i) for i in ids))
        if not wanted:
            return []
        # Token embeddings are the heavy part (54 KB a chunk): ask only for those not
        # already held, and their payload's token ids and spans only then.
        need_tokens = [i for i in wanted if tokens and self._tokens.get(i) is None]
        light = models.PayloadSelectorExclude(exclude=["token_ids", "token_spans"])
        found: dict[int, Any] = {}
        if need_tokens:
            for p in self.client.retrieve(
                self.collection, need_tokens, with_payload=True, with_vectors=[DENSE, TOKENS]
            ):
                found[int(p.id)] = p
        rest = [i for i in wanted if i not in found]
        if rest:
            for p in self.client.retrieve(
                self.collection, rest, with_payload=light, with_vectors=[DENSE]
            ):
                found[int(p.id)] = p
        return [
            from_point(found[i], tokens, self._tokens, self.dimension)
            for i in map(int, ids)
            if i in found
        ]

    @_guarded
    def lookup_keys(self, keys: Collection[str]) -> dict[str, ChunkRecord]:
        out: dict[str, ChunkRecord] = {}
        keys = sorted(set(keys))
        for lo in range(0, len(keys), _SCROLL):
            batch = keys[lo : lo + _SCROLL]
            offset = None
            while True:
                points, offset = self.client.scroll(
                    self.collection,
                    scroll_filter=models.Filter(
                        must=[models.FieldCondition(key="key", match=models.MatchAny(any=batch))]
                    ),
                    limit=_SCROLL,
                    offset=offset,
                    with_payload=True,
                    with_vectors=[DENSE, TOKENS],
                )
                for p in points:
                    record = from_point(p, True, self._tokens, self.dimension)
                    out.setdefault(record.key, record)
                if offset is None:
                    break
        return out

    @_guarded
    def text_keys(self) -> set[str]:
        """The cache key of every point (payload `key`), scrolled a page at a time."""
        keys: set[str] = set()
        offset = None
        while True:
            points, offset = self.client.scroll(
                self.collection,
                limit=_SCROLL,
                offset=offset,
                with_payload=["key"],
                with_vectors=False,
            )
            keys.update(str((p.payload or {})["key"]) for p in points)
            if offset is None:
                return keys

    def late_interaction(
        self,
        query: np.ndarray,
        weights: np.ndarray,
        records: Sequence[ChunkRecord],
        prepared: Any = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """MaxSim here, on the candidates' token embeddings fetched from Qdrant (held in
        memory afterwards, see TokenCache). docs/scaling.md measures the alternative,
        MaxSim inside Qdrant as a rerank stage."""
        missing = [r.id for r in records if r.tokens is None]
        fetched = {r.id: r for r in self.fetch(missing, tokens=True)} if missing else {}
        full = [fetched.get(r.id, r) if r.tokens is None else r for r in records]
        return maxsim_records(query, weights, full)

    def count(self) -> int:
        """Points in this build's collection, as of the last flush (or open)."""
        return self._stored

    @_guarded
    def _count_points(self) -> int:
        return int(self.client.count(self.collection, exact=True).count)

    def stats(self) -> CorpusStats:
        return self._stats.stats()

    @_guarded
    def ping(self) -> None:
        self.client.get_collection(self.collection)
