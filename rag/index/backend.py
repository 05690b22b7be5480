"""The search-backend contract: what the build writes through and ranking reads from.

A backend stores chunks under stable ids and answers the questions ranking asks of
them. It knows nothing of questions, weights or answers: candidates come from the
backend, the fused score, late interaction and answer extraction run in `rag/`.

    backend = open_backend(index_dir, manifest)          # read side (QA.load does this)
    backend.dense_search(vector, 50, sources={"a.txt"})  # [(id, cosine)], best first
    backend.lexical_search(terms, 50)                    # [(id, raw BM25)], best first
    backend.lexical_scores(terms, ids)                   # raw BM25 of given ids
    backend.fetch(ids, tokens=True)                      # [ChunkRecord], in the order asked

Ids. `chunk_id(source, start, end)` is a 63-bit hash of where the chunk lies in its
file: the same chunk gets the same id in every build, with every backend and executor,
and it fits FAISS (int64) and Qdrant (unsigned) point ids. Row numbers stay private to
a backend.

Writing. A build never writes into the index that is serving. It creates a staging
backend (`create`), `add`s records in batches as they are embedded (a writer must not
need the whole corpus in memory), `link`s duplicates and neighbours once all are in, `flush`es, and
then the build writes the manifest and calls `publish` right before the index folder is
swapped into place (rag/index/store.py); `retire` removes what the previous build left
behind, `discard` what a failed build wrote.

Adding a backend: one module under `rag/index/backends/` with a subclass of
`SearchBackend`, and one line in `BACKENDS`. The shared contract suite
(tests/rag/index/test_backend_contract.py) then runs on it once its kind is added to
the suite's parametrization.
"""

from __future__ import annotations

import hashlib
import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from rag.chunker import Chunk
from rag.config import IndexConfig
from rag.errors import RagError, UnsupportedOperationError

if TYPE_CHECKING:
    from rag.embedder import TokenBlock
    from rag.index.manifest import Manifest

# kind -> "module:Class", imported on first use so that a backend's client library
# (qdrant-client) is only imported by the indexes that use it.
BACKENDS: dict[str, str] = {
    "local": "rag.index.backends.local:LocalBackend",
    "qdrant": "rag.index.backends.qdrant:QdrantBackend",
}

# Sources a search is restricted to; None searches every source.
Sources = Collection[str] | None
Scored = list[tuple[int, float]]

_ID_MASK = (1 << 63) - 1


def chunk_id(source: str, start: int, end: int) -> int:
    """Stable id of the chunk at `source`[start:end]: 63 bits of a blake2b hash."""
    digest = hashlib.blake2b(f"{source}\0{start}\0{end}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & _ID_MASK


@dataclass(frozen=True)
class ChunkRecord:
    """A chunk as a backend stores it. `tokens`, `token_ids` and `token_spans` are None
    when fetched with tokens=False."""

    id: int
    chunk: Chunk
    vector: np.ndarray  # (d,) float32, L2-normalised pooled vector of chunk.embedded
    # Cache key of the embedded text (rag.embedder.text_key), so a later build can
    # reuse the encoding when the same text comes back, wherever it now lies.
    key: str
    tokens: np.ndarray | None = None  # (n, d) float16 or float32, rows L2-normalised
    token_ids: np.ndarray | None = None  # (n,) int32 word-piece ids
    token_spans: np.ndarray | None = None  # (n, 2) int32 spans in chunk.embedded
    # Ids of the chunks that say the same thing, in corpus order (rag/index/duplicates.py).
    duplicates: tuple[int, ...] = ()
    # Id of the chunk just before this one in its file (None for a file's first chunk):
    # the answerer looks there for who is speaking.
    previous: int | None = None

    @classmethod
    def from_block(cls, chunk: Chunk, block: TokenBlock, key: str) -> ChunkRecord:
        return cls(
            id=chunk_id(chunk.source, chunk.start, chunk.end),
            chunk=chunk,
            vector=block.vector,
            key=key,
            tokens=block.embeddings,
            token_ids=block.ids,
            token_spans=block.spans,
        )

    def without_tokens(self) -> ChunkRecord:
        return replace(self, tokens=None, token_ids=None, token_spans=None)


@dataclass(frozen=True)
class ChunkLinks:
    """Facts about a chunk that need the whole corpus, set by the build once every
    chunk is added (SearchBackend.link)."""

    duplicates: tuple[int, ...] = ()
    previous: int | None = None


@dataclass(frozen=True)
class CorpusStats:
    """What ranking needs to know about the whole corpus: its chunk count, in how many
    chunks each word piece occurs (IDF of the question's word pieces for late
    interaction) and in how many each BM25 term occurs (IDF of its terms)."""

    chunks: int
    piece_df: np.ndarray  # (vocabulary,) int64, indexed by word-piece id
    term_df: Callable[[str], int]

    def piece_idf(self, ids: np.ndarray) -> np.ndarray:
        """Smoothed IDF of word pieces; a piece the corpus lacks gets the highest."""
        df = self.piece_df
        known = np.where(ids < len(df), df[np.minimum(ids, len(df) - 1)], 0)
        return np.log((self.chunks + 1) / (known + 1)) + 1.0

    def term_idf(self, term: str) -> float:
        """BM25 (Lucene) IDF of a term, 0 for a term the corpus lacks."""
        df = self.term_df(term)
        if df == 0:
            return 0.0
        n = self.chunks
        return float(np.log(1 + (n - df + 0.5) / (df + 0.5)))


@dataclass
class StatsCounter:
    """Corpus statistics kept up to date as records are added and deleted, for backends
    whose engine does not expose document frequencies (`save`/`load` as JSON + npy)."""

    chunks: int = 0
    pieces: dict[int, int] = field(default_factory=dict)
    terms: dict[str, int] = field(default_factory=dict)

    def add(self, records: Iterable[ChunkRecord], sign: int = 1) -> None:
        from rag.text import tokenize

        for record in records:
            self.chunks += sign
            if record.token_ids is None:
                raise ValueError("StatsCounter needs records with their token ids")
            for piece in np.unique(record.token_ids).tolist():
                self.pieces[piece] = self.pieces.get(piece, 0) + sign
            for term in set(tokenize(record.chunk.embedded)):
                self.terms[term] = self.terms.get(term, 0) + sign

    def remove(self, records: Iterable[ChunkRecord]) -> None:
        self.add(records, sign=-1)

    def stats(self) -> CorpusStats:
        size = max(self.pieces, default=0) + 1
        df = np.zeros(size, dtype=np.int64)
        for piece, n in self.pieces.items():
            df[piece] = n
        terms = dict(self.terms)
        return CorpusStats(self.chunks, df, lambda t: terms.get(t, 0))


class SearchBackend(ABC):
    """Chunks stored under stable ids, searched densely and lexically, fetched by id.

    Scores: `dense_search` returns cosines (inner products of normalised vectors);
    `lexical_search` and `lexical_scores` return raw BM25, bm25s's default Lucene
    variant, idf * tf / (tf + k1 (1 - b + b dl / avgdl)) with k1 1.5 and b 0.75, over
    the `rag.text.tokenize` terms of `chunk.embedded`. Both searches return at most `k`
    (id, score) pairs, best first, only chunks whose source is in `sources` when it is
    given; lexical results have a score > 0. Reads see what was flushed.
    """

    kind: ClassVar[str]

    # --- lifecycle ---------------------------------------------------------------
    @classmethod
    @abstractmethod
    def create(
        cls,
        folder: Path,
        dimension: int,
        config: IndexConfig,
        settings: Mapping[str, Any] | None = None,
    ) -> SearchBackend:
        """A new, empty backend for a build whose staging folder is `folder` (the
        folder that becomes the index folder when published). `settings` are
        deployment options that are not part of the index (a server URL)."""

    @classmethod
    @abstractmethod
    def open(cls, folder: Path, manifest: Manifest, *, verify: bool = True) -> SearchBackend:
        """The published backend of the index at `folder`, as its manifest describes
        it. Raises IndexMismatchError (damaged, wrong size) or BackendUnavailableError."""

    def settings(self) -> dict[str, Any]:
        """What the manifest records to open this backend again (collection, location,
        dense index kind). JSON-serialisable."""
        return {}

    def files(self) -> list[str]:
        """Files this backend keeps in the index folder, relative to it: the manifest
        records their sha256 and loading checks them."""
        return []

    def publish(self) -> None:  # noqa: B027 - optional hook
        """Make this build the one readers get (an alias switch). Called after `flush`
        and the manifest, right before the index folder is swapped into place."""

    def retire(self, previous: Manifest) -> None:  # noqa: B027 - optional hook
        """Remove what the build described by `previous` left outside the index folder
        (an old collection). Called after the swap; must tolerate it being gone."""

    def discard(self) -> None:  # noqa: B027 - optional hook
        """Remove what this unpublished build wrote outside its staging folder."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files and connections."""

    def remote_writes(self) -> AbstractContextManager[Any] | None:
        """None: only the driver writes (`add`). A backend that takes writes from other
        processes (a distributed build's workers) returns a context manager that lends
        its new storage for the block and gives a picklable spec whose `open()` makes a
        writer (`write(records)`, `close()`) in any process; the driver then `adopt`s
        the records those writers stored (qdrant: backends/qdrant_writer.py)."""
        return None

    def adopt(self, records: Sequence[ChunkRecord]) -> None:
        """Count records that writers of `remote_writes` stored (without their token
        embeddings); `link` and `flush` then apply to them as to added ones. A backend
        whose `remote_writes()` is None has no such records: it refuses them."""
        raise UnsupportedOperationError(
            f"the {self.kind} backend takes no remote writes (its remote_writes() is None); "
            "add() records with their token embeddings instead"
        )

    # --- writing -----------------------------------------------------------------
    @abstractmethod
    def add(self, records: Sequence[ChunkRecord]) -> None:
        """Store records (with tokens); an id already present is replaced."""

    @abstractmethod
    def delete(self, ids: Iterable[int]) -> None:
        """Remove chunks; unknown ids are ignored."""

    @abstractmethod
    def link(self, links: Mapping[int, ChunkLinks]) -> None:
        """Record each chunk's near-duplicates and previous chunk, once all are added;
        fetched records carry them (`duplicates`, `previous`)."""

    @abstractmethod
    def flush(self) -> None:
        """Make every add, delete and link durable."""

    # --- reading -----------------------------------------------------------------
    @abstractmethod
    def dense_search(self, vector: np.ndarray, k: int, sources: Sources = None) -> Scored:
        """The `k` chunks nearest `vector` by cosine, best first."""

    @abstractmethod
    def lexical_search(self, terms: Sequence[str], k: int, sources: Sources = None) -> Scored:
        """The `k` chunks with the highest BM25 for `terms` (score > 0), best first."""

    @abstractmethod
    def lexical_scores(self, terms: Sequence[str], ids: Sequence[int]) -> np.ndarray:
        """Raw BM25 of each of `ids` for `terms` (0 where no term occurs)."""

    @abstractmethod
    def fetch(self, ids: Sequence[int], *, tokens: bool = False) -> list[ChunkRecord]:
        """Records of `ids` in the order asked; ids the backend lacks are left out."""

    @abstractmethod
    def lookup_keys(self, keys: Collection[str]) -> dict[str, ChunkRecord]:
        """Records (with tokens) whose embedded text has one of these cache keys: the
        embedding cache of the next build."""

    @abstractmethod
    def text_keys(self) -> set[str]:
        """The cache key of every stored chunk: a distributed build sends them to its
        workers, which then embed only the texts the previous index lacks."""

    @abstractmethod
    def count(self) -> int:
        """Number of chunks stored."""

    @abstractmethod
    def stats(self) -> CorpusStats:
        """Corpus-wide statistics for ranking (see CorpusStats)."""

    @abstractmethod
    def ping(self) -> None:
        """Return if the backend answers; raise BackendUnavailableError if not."""

    # --- late interaction (default: from fetched tokens) ---------------------------
    def prepare(self, queries: Sequence[np.ndarray]) -> list[Any]:
        """Per-question state computed once for a batch of questions' token matrices
        and handed back to `late_interaction` (the local backend's one product with its
        whole in-memory token store). Default: nothing."""
        return [None] * len(queries)

    def late_interaction(
        self,
        query: np.ndarray,
        weights: np.ndarray,
        records: Sequence[ChunkRecord],
        prepared: Any = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """IDF-weighted MaxSim of the question's word pieces against each record: (own
        text only, own text with its context). Records must carry tokens unless the
        backend computes this natively."""
        return maxsim_records(query, weights, records)


def maxsim_records(
    query: np.ndarray, weights: np.ndarray, records: Sequence[ChunkRecord]
) -> tuple[np.ndarray, np.ndarray]:
    """MaxSim of `query` against each record's own tokens and against all its tokens,
    from the records' token embeddings."""
    own = np.zeros(len(records), dtype=np.float32)
    full = np.zeros(len(records), dtype=np.float32)
    total = float(weights.sum())
    if len(query) == 0 or total <= 0:
        return own, full
    for i, record in enumerate(records):
        if record.tokens is None or record.token_spans is None:
            raise ValueError(f"record {record.id} was fetched without its tokens")
        if not len(record.tokens):
            continue
        sims = query @ np.asarray(record.tokens, dtype=np.float32).T
        mask = record.token_spans[:, 0] >= record.chunk.text_offset
        full[i] = weights @ sims.max(axis=1) / total
        own[i] = weights @ np.where(mask, sims, -1.0).max(axis=1) / total
    return own, full


def backend_class(kind: str) -> type[SearchBackend]:
    """The backend class registered under `kind`."""
    target = BACKENDS.get(kind)
    if target is None:
        raise RagError(f"unknown index backend {kind!r}; valid choices: {sorted(BACKENDS)}")
    module, _, name = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module), name)
    except ImportError as exc:
        raise RagError(f"index backend {kind!r} cannot be loaded ({exc})") from None
    return cls


def create_backend(
    folder: Path, dimension: int, config: IndexConfig, settings: Mapping[str, Any] | None = None
) -> SearchBackend:
    """A new, empty staging backend of the kind `config.backend` names."""
    return backend_class(config.backend).create(Path(folder), dimension, config, settings)


def open_backend(folder: Path, manifest: Manifest, *, verify: bool = True) -> SearchBackend:
    """The backend the manifest of the index at `folder` names, opened for reading."""
    return backend_class(manifest.backend.kind).open(Path(folder), manifest, verify=verify)
