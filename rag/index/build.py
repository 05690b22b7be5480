"""Index build: read -> chunk -> encode -> write through the backend contract -> publish.

Entry point: `build_index(corpus, out, config)`.

    documents = read_corpus(corpus)                          # the driver, always
    backend = create_backend(staging, dimension, config.index)
    for batch in executor.run(plan):                         # the executor seam
        backend.add(batch.records)                           # streamed, batch by batch
    backend.link(duplicates, previous chunks)                # needs every chunk
    backend.flush(); manifest.save(staging); backend.publish()
    swap staging into place at `out`; backend.retire(previous manifest)

The executor seam. An executor turns the plan (documents, configs, embedding cache) into
batches of embedded chunks: `Executor.run(plan) -> Iterator[EncodedBatch]`, each batch a
list of `ChunkRecord`s (rag/index/backend.py) and how many of them the model ran on.
Rules every executor keeps:
- chunks come from `chunk_documents(documents, config.chunker)` and are yielded in that
  order (corpus order), so every executor writes the same rows in the same order;
- a chunk's record is `ChunkRecord.from_block(chunk, block, key)` with
  `key = text_key(cache_tag, chunk.embedded)`; `encode_chunks` does this, looking each
  key up in `plan.cache` first and running the model only on the texts it lacks;
- a batch holds at most `plan.block_size` chunks, so memory depends on the block size,
  not on the corpus.
`LocalExecutor` runs `encode_chunks` in this process. A distributed executor runs it in
workers (each loading the model once) and yields their batches back in corpus order.
When the backend takes writes from other processes (`plan.backend.remote_writes()`,
the qdrant backend), a distributed executor may have its workers write the records
themselves: it yields them without token embeddings, in `EncodedBatch.written` with
the vector duplicate detection needs, and the driver only `adopt`s them.

Atomicity: everything is written into a staging folder (and, for a server backend, a
new collection) and published by `renameat2(RENAME_EXCHANGE)` of the folder, so a build
killed at any point leaves the previous index serving.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import shutil
import socket
import time
import uuid
from array import array
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import psutil

from rag.chunker import Chunk, chunk_document
from rag.config import PipelineConfig
from rag.corpus import Document, read_corpus
from rag.embedder import Embedder, TokenBlock, resolve_precision, text_key
from rag.errors import RagError
from rag.index.backend import (
    ChunkLinks,
    ChunkRecord,
    SearchBackend,
    create_backend,
    open_backend,
)
from rag.index.duplicates import DuplicateFinder, text_vector
from rag.index.manifest import BackendInfo, Counts, Manifest, ModelInfo
from rag.index.store import library_versions, sha256_file, swap_into_place
from rag.jsonl import write_jsonl
from rag.runtime import bound_heap

log = logging.getLogger(__name__)

DOCUMENTS = "documents.jsonl"
# Chunks per batch handed from the executor to the backend; the model runs on each
# batch's texts sorted by length. A batch of SciFact's chunks (138 word pieces on
# average) holds about 110 kB of token embeddings per chunk in float16: 1024 of them
# keep the build's peak memory low while sorting still makes the padding small. (At
# 4096 a SciFact build had reached 1.97 GB resident after its second batch.)
BLOCK_SIZE = 1024


@dataclass
class BuildReport:
    documents: int
    chunks: int
    sentences: int
    embedded: int
    reused: int
    seconds: float
    skipped: list[str] = field(default_factory=list)
    # Records stored per writing process, "driver" or a worker's "host:pid", when the
    # executor's workers wrote some (remote writes); empty when the driver wrote all.
    writers: dict[str, int] = field(default_factory=dict)
    # True when the index on disk already matched corpus, settings and model, and was
    # kept as it is (same build id, nothing written).
    unchanged: bool = False


class EmbeddingCache:
    """Encodings of the previous index, looked up by text key: a rebuild re-embeds only
    texts it has not seen. Empty when there is no readable previous index."""

    def __init__(self, backend: SearchBackend | None = None) -> None:
        self.backend = backend

    def lookup(self, keys: list[str]) -> dict[str, TokenBlock]:
        if self.backend is None or not keys:
            return {}
        return {
            key: TokenBlock(r.vector, r.tokens, r.token_ids, r.token_spans)  # type: ignore[arg-type]
            for key, r in self.backend.lookup_keys(keys).items()
        }

    def keys(self) -> set[str]:
        """Every key the cache holds (sent once to the workers of a distributed build)."""
        return set() if self.backend is None else self.backend.text_keys()

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()
            self.backend = None


@dataclass
class BuildPlan:
    corpus: Path
    documents: list[Document]
    config: PipelineConfig
    cache: EmbeddingCache
    cache_tag: str  # what an encoding depends on besides its text (model@precision)
    block_size: int = BLOCK_SIZE
    # The build's new backend: an executor whose workers can write into it asks its
    # `remote_writes()`; otherwise the driver writes every record (`add`).
    backend: SearchBackend | None = None


@dataclass
class EncodedBatch:
    records: list[ChunkRecord]
    embedded: int  # records the model ran on; the others came from the cache
    # Records the executor's writers already stored in the backend (remote writes),
    # by id: the vector of the chunk's own text (`text_vector`), since such a record
    # comes without its token embeddings.
    written: dict[int, np.ndarray] = field(default_factory=dict)
    # Records stored per writer process ("host:pid") in this batch.
    writers: dict[str, int] = field(default_factory=dict)


class Executor(Protocol):
    """Runs the embedding part of a build (see the module docstring)."""

    name: str

    def model_info(self) -> ModelInfo:
        """The model as the manifest records it (name, dimension, precision, runtime)."""
        ...

    def run(self, plan: BuildPlan) -> Iterator[EncodedBatch]: ...

    def close(self) -> None: ...


def encode_chunks(
    embedder: Embedder, chunks: list[Chunk], cache: EmbeddingCache, progress: bool | None = None
) -> EncodedBatch:
    """Records of `chunks`, running the model only on texts the cache lacks (each
    distinct text once)."""
    keys = [text_key(embedder.cache_tag, c.embedded) for c in chunks]
    found = cache.lookup(sorted(set(keys)))
    missing = sorted(
        {k: c.embedded for k, c in zip(keys, chunks, strict=True) if k not in found}.items()
    )
    if missing:
        fresh = embedder.encode_blocks([t for _, t in missing], progress=progress)
        found.update(zip([k for k, _ in missing], fresh, strict=True))
    records = [ChunkRecord.from_block(c, found[k], k) for c, k in zip(chunks, keys, strict=True)]
    return EncodedBatch(records, len(missing))


class LocalExecutor:
    """Chunks and embeds in this process, a block of chunks at a time."""

    name = "local"

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def model_info(self) -> ModelInfo:
        e = self.embedder
        return ModelInfo(
            e.name, e.dimension, e.max_seq_length, e.precision, e.describe()["documents"]
        )

    def run(self, plan: BuildPlan) -> Iterator[EncodedBatch]:
        # Chunked document by document as blocks fill, so no more than a block of
        # chunks is held (the blocks are those of chunking the whole corpus at once).
        block: list[Chunk] = []
        for document in plan.documents:
            block.extend(chunk_document(document, plan.config.chunker))
            while len(block) >= plan.block_size:
                yield encode_chunks(self.embedder, block[: plan.block_size], plan.cache)
                del block[: plan.block_size]
        if block:
            yield encode_chunks(self.embedder, block, plan.cache)

    def close(self) -> None:
        pass


def _previous(out: Path) -> tuple[Manifest | None, SearchBackend | None]:
    """The manifest and backend of the index at `out`, if one can be opened."""
    try:
        manifest = Manifest.load(out)
        return manifest, open_backend(out, manifest, verify=False)
    except (RagError, OSError, ValueError):
        try:
            return Manifest.load(out), None
        except (RagError, OSError, ValueError):
            return None, None


def staging_folder(out: Path) -> Path:
    """A new, empty staging folder beside `out`. Its name records the building process
    (`.<out>.tmp-<random>-<pid>-<host>`), set by one mkdir, so a later build can tell
    the leftover of a build killed with SIGKILL (which runs no clean-up) from the
    folder of a build still running."""
    tmp = out.with_name(
        f".{out.name}.tmp-{uuid.uuid4().hex[:8]}-{os.getpid()}-{socket.gethostname()}"
    )
    tmp.mkdir()
    return tmp


_STAGING = re.compile(r"\.tmp-[0-9a-f]{8}-(?P<pid>\d+)-(?P<host>.+)")


def remove_stale_staging(out: Path) -> list[Path]:
    """Remove the staging folders beside `out` whose build is dead: made on this host
    by a process that no longer exists. Folders of live builds, of builds on other
    hosts (a shared filesystem) and without a recorded owner are left alone."""
    removed = []
    host = socket.gethostname()
    prefix = f".{out.name}"
    for path in sorted(Path(out.parent).glob(f"{glob.escape(prefix)}.tmp-*")):
        match = _STAGING.fullmatch(path.name[len(prefix) :])
        if match is None or match["host"] != host or not path.is_dir():
            continue
        if psutil.pid_exists(int(match["pid"])):  # still building (or the pid is reused)
            continue
        shutil.rmtree(path, ignore_errors=True)
        log.warning("removed %s, left by a build that was killed", path)
        removed.append(path)
    return removed


def _intact(out: Path, manifest: Manifest) -> bool:
    try:
        return all(sha256_file(out / name) == digest for name, digest in manifest.files.items())
    except OSError:
        return False


def build_index(
    corpus: Path,
    out: Path,
    config: PipelineConfig | None = None,
    *,
    embedder: Embedder | None = None,
    executor: Executor | None = None,
    use_cache: bool = True,
    backend_settings: Mapping[str, Any] | None = None,
    block_size: int = BLOCK_SIZE,
) -> BuildReport:
    """Read `corpus`, chunk, embed, store through the backend `config.index.backend`
    names, and atomically replace the index at `out`. Chunks reach the backend
    `block_size` at a time (memory depends on it, not on the corpus)."""
    started = time.perf_counter()
    bound_heap()  # the build's memory must not grow with the corpus (rag/runtime.py)
    config = config or PipelineConfig()
    corpus, out = Path(corpus), Path(out)
    docs = read_corpus(corpus)
    sources = {d.source: d.sha256 for d in docs}
    precision = resolve_precision(config.embedder.document_precision)

    previous, previous_backend = _previous(out)
    if (
        use_cache
        and previous is not None
        and previous.stale_reason(sources, config, precision) is None
        and _intact(out, previous)
    ):
        if previous_backend is not None:
            previous_backend.close()
        c = previous.counts
        return BuildReport(
            c.documents, c.chunks, c.sentences, 0, c.chunks, time.perf_counter() - started,
            unchanged=True,
        )  # fmt: skip
    own_executor = executor is None
    if executor is None:
        embedder = embedder or Embedder(config.embedder)
        executor = LocalExecutor(embedder)
    model = executor.model_info()
    if model.name != config.embedder.model:
        raise ValueError(f"embedder {model.name!r} differs from config {config.embedder.model!r}")
    cache = EmbeddingCache(previous_backend if use_cache else None)
    if not use_cache and previous_backend is not None:
        previous_backend.close()

    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(out)
    tmp = staging_folder(out)
    backend: SearchBackend | None = None
    published = False
    try:
        backend = create_backend(tmp, model.dimension, config.index, backend_settings)
        tag = f"{model.name}@{model.document_precision}"
        plan = BuildPlan(corpus, docs, config, cache, tag, block_size, backend)
        # Per chunk the build keeps its id and what duplicate detection needs (a few
        # hundred bytes, the vectors on disk), never the chunk or its embeddings.
        ids = array("q")
        finder = DuplicateFinder(tmp / ".duplicates", model.dimension)
        embedded = sentences = tokens = 0
        writers: dict[str, int] = {}
        for batch in executor.run(plan):
            own = [r for r in batch.records if r.id not in batch.written]
            if own:
                backend.add(own)
            if batch.written:
                backend.adopt([r for r in batch.records if r.id in batch.written])
                for name, n in batch.writers.items():
                    writers[name] = writers.get(name, 0) + n
            embedded += batch.embedded
            for record in batch.records:
                ids.append(record.id)
                written = batch.written.get(record.id)
                finder.add(record.chunk, text_vector(record) if written is None else written)
                sentences += len(record.chunk.sentences)
                tokens += len(record.token_ids) if record.token_ids is not None else 0
            # Let the batch go before the executor embeds the next one: at most one
            # batch of token embeddings is held at a time.
            del batch
        chunk_count = len(ids)
        groups = finder.groups(config.index)
        source = finder.sources
        finder.close()
        backend.link(
            {
                ids[i]: ChunkLinks(
                    duplicates=tuple(ids[j] for j in group),
                    previous=ids[i - 1] if i and source[i - 1] == source[i] else None,
                )
                for i, group in enumerate(groups)
            }
        )
        del groups, ids
        backend.flush()
        cache.close()
        write_jsonl(tmp / DOCUMENTS, (asdict(d) for d in docs))
        files = [DOCUMENTS, *backend.files()]
        if writers:
            writers = {"driver": chunk_count - sum(writers.values()), **writers}
        manifest = Manifest(
            build_id=uuid.uuid4().hex,
            built_at=datetime.now(UTC).isoformat(timespec="seconds"),
            corpus=str(corpus.resolve()),
            model=model,
            tokenizer=config.chunker.encoding,
            config=config,
            backend=BackendInfo(backend.kind, backend.settings()),
            executor=executor.name,
            counts=Counts(len(docs), chunk_count, sentences, tokens),
            sources=sources,
            files={name: sha256_file(tmp / name) for name in files},
            versions=library_versions(),
            build={
                "embedded": embedded,
                "reused": chunk_count - embedded,
                **{f"written_by {name}": n for name, n in writers.items()},
            },
        )
        manifest.save(tmp)
        backend.publish()
        published = True
        swap_into_place(tmp, out)
        if previous is not None:
            backend.retire(previous)
    except BaseException:
        if backend is not None and not published:
            backend.discard()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        cache.close()
        if backend is not None:
            backend.close()
        if own_executor:
            executor.close()
    return BuildReport(
        documents=len(docs),
        chunks=chunk_count,
        sentences=sentences,
        embedded=embedded,
        reused=chunk_count - embedded,
        seconds=time.perf_counter() - started,
        writers=writers,
    )


def stale_reason(
    index_path: Path, corpus: Path, config: PipelineConfig | None = None
) -> str | None:
    """Why the index at `index_path` is not what building `corpus` with `config` would
    give (Manifest.stale_reason), or None."""
    config = config or PipelineConfig()
    try:
        manifest = Manifest.load(index_path)
    except RagError as exc:
        return str(exc)
    sources = {d.source: d.sha256 for d in read_corpus(Path(corpus))}
    return manifest.stale_reason(
        sources, config, resolve_precision(config.embedder.document_precision)
    )
