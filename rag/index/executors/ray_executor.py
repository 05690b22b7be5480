"""The Ray executor: the build's read, chunk and embed stages as a Ray Data pipeline.

    rag index --corpus DIR --out DIR --executor ray [--ray-address HOST:PORT]

    ray.data.from_items(sources)                     the corpus files, in corpus order
      .map_batches(read_documents)                   1. read the files (tasks)
      .map_batches(chunk_documents)                  2. chunk them (tasks)
      .map_batches(ChunkEmbedder, ActorPoolStrategy) 3. embed: an actor pool, each actor
                                                        loading the model once
      .map_batches(PointWriter, ActorPoolStrategy)   4. with a backend that takes remote
                                                        writes (qdrant): writer actors
                                                        upsert the points (ray_writer.py)
      .iter_batches(block_size)                      the driver writes each block through
                                                        the backend (build.py), or only
                                                        adopts what the writers stored

It keeps the rules of the executor seam (rag/index/build.py): the chunks come from the
same `chunk_document` and reach the driver in corpus order (Ray Data's
`preserve_order`), with the same keys, so the index is the one `--executor local`
builds: same chunk ids, offsets and texts; vectors equal to float tolerance (a text is
embedded in another batch, so with other padding and other kernel blocking).

Files are read by the workers from `plan.corpus`, so on a cluster the corpus must be on
a path every node can read (a shared filesystem); each file's sha256 must equal the one
the driver read, or the build stops (the file changed while it was being indexed).

The embedding cache: the keys of the previous index's texts go to every actor once (an
object in Ray's store); an actor runs the model only on the texts of its batch the
previous index lacks, and the driver takes the others' encodings from the previous
index as each block is written. Memory: an actor holds one batch (`RayConfig.batch_size`
chunks), the driver one block of at most that many (no more than `plan.block_size`),
and Ray Data's streaming executor bounds what is in flight between them.

Writers: with `--backend qdrant` the points of freshly embedded chunks are upserted by
writer actors, never passing through the driver: one actor, on the driver's node, for
an embedded store (one process at a time may hold it), one per embedding actor for a
server. Rows taken from the embedding cache are written by the driver, from the
previous index, as with the local backend.

The document precision ("auto") is resolved on the driver and imposed on every actor,
so a cluster of mixed CPUs still embeds every text the same way, under the same cache
key.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import sys
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from rag.chunker import Chunk, chunk_document
from rag.config import ChunkerConfig, EmbedderConfig
from rag.corpus import Document, decode
from rag.embedder import TokenBlock, read_model_spec, resolve_model_path, resolve_precision
from rag.errors import CorpusError, RagError
from rag.index.backend import ChunkRecord, chunk_id
from rag.index.build import BuildPlan, EncodedBatch
from rag.index.executors.ray_cluster import RaySession, ray_session
from rag.index.manifest import ModelInfo
from rag.runtime import arrow_system_pool, bound_heap, configure, trim_heap

log = logging.getLogger(__name__)


class RayBuildError(RagError):
    """The Ray pipeline failed (a worker died more often than allowed, a task raised)."""


@dataclass(frozen=True)
class RayConfig:
    """How the build runs on Ray. None of it changes the index."""

    # host:port of a running cluster's head; None: $RAY_ADDRESS, else a local Ray.
    address: str | None = None
    # Model threads per actor (torch intra-op). Two: on this 2-core machine one actor
    # using both cores, as the local build does, rather than two actors of one thread,
    # which hold the model and torch twice (550 MB each, measured at the peak of a build).
    threads_per_actor: int = 2
    # Embedding actors; None: the cluster's CPUs / threads_per_actor.
    actors: int | None = None
    # Chunks per actor call; the model sorts them by length into batches of
    # EmbedderConfig.batch_size, so a larger call pads less and holds more: its token
    # embeddings, in the actor and in the object store on their way to the driver. At
    # 512 the actor peaked at 993-1,076 MB on SciFact, at 256 at 900 MB, at 128 at
    # 828-831 MB (docs/scaling.md, "Memory: what bounds it"). Not 128: a corpus that
    # fits in one call (the seeds' 218 chunks) is then embedded in the same batches as
    # by the local build, so the two indexes are bit-identical and answer alike; in
    # two calls, bfloat16 sums of other batch-mates changed one seeds answer.
    batch_size: int = 256
    # Times an actor is restarted and its call retried after its worker dies (a lost
    # node); beyond that the build fails and the previous index stays.
    max_restarts: int = 2
    # CPUs of a local Ray (None: this machine's cores) and its object store.
    local_cpus: int | None = None
    # Ray Data streams within it (spilling to disk past it); a few blocks in flight.
    # The store's pages, once touched, stay resident for the build (its allocator
    # reuses them, never returns them), so its size is part of the peak: on SciFact the
    # processes mapping it held 289 MB of it with 512 MB, 247 MB with 256 MB.
    local_object_store_bytes: int = 256 << 20
    # CPUs reserved per writer actor (stage 4): it mostly waits on the store.
    writer_cpus: float = 0.25


def _torch_version() -> str:
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return "unknown"


def model_info(config: EmbedderConfig) -> ModelInfo:
    """The model as the manifest records it, read from its folder: the driver never
    loads the model."""
    path = resolve_model_path(config.model)
    max_seq_length = read_model_spec(path)
    try:
        dimension = int(json.loads((path / "config.json").read_text())["hidden_size"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RagError(f"{path}/config.json does not give the model's hidden_size: {exc}") from None
    precision = resolve_precision(config.document_precision)
    runtime = f"torch {_torch_version()} {precision}, Ray Data actor pool"
    return ModelInfo(config.model, dimension, max_seq_length, precision, runtime)


# --- the stages (run in Ray workers; plain functions and one class, pickled by name) ---


def read_documents(batch: dict[str, np.ndarray], corpus: str) -> dict[str, np.ndarray]:
    """Stage 1: read and decode the files of a batch of sources, checking each against
    the sha256 the driver read."""
    texts = []
    for source, expected in zip(batch["source"], batch["sha256"], strict=True):
        path = Path(corpus) / str(source)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CorpusError(
                f"a Ray worker cannot read {path}: {exc.strerror or exc}; with --executor ray "
                "the corpus must be on a path every node of the cluster can read"
            ) from None
        if hashlib.sha256(data).hexdigest() != expected:
            raise CorpusError(
                f"{source} changed while the index was being built; run the build again"
            )
        texts.append(decode(data, str(source)))
    return {
        "source": batch["source"],
        "sha256": batch["sha256"],
        "text": np.asarray(texts, dtype=object),
    }


def chunk_batch(batch: dict[str, np.ndarray], chunker: ChunkerConfig) -> dict[str, np.ndarray]:
    """Stage 2: the chunks of each document (`chunk_document`, as the local build)."""
    rows: list[str] = []
    texts: list[str] = []
    for source, text, sha in zip(batch["source"], batch["text"], batch["sha256"], strict=True):
        doc = Document(source=str(source), text=str(text), sha256=str(sha))
        for chunk in chunk_document(doc, chunker):
            rows.append(json.dumps(asdict(chunk), ensure_ascii=False))
            texts.append(chunk.embedded)
    return {"chunk": np.asarray(rows, dtype=object), "embedded": np.asarray(texts, dtype=object)}


class ChunkEmbedder:
    """Stage 3, one per actor: loads the model once, then embeds batch after batch the
    texts the previous index lacks."""

    def __init__(self, config: EmbedderConfig, threads: int, cached: Any) -> None:
        configure()
        # An actor embeds batch after batch: bounded memory (rag/runtime.py).
        bound_heap()
        arrow_system_pool()
        import torch

        torch.set_num_threads(threads)
        from rag.embedder import Embedder

        self.embedder = Embedder(config)
        # A frozenset of keys, or an ObjectRef of one (shared by every actor).
        if not isinstance(cached, frozenset):
            import ray

            cached = ray.get(cached)
        self.cached: frozenset[str] = cached
        self.dimension = self.embedder.dimension

    def __call__(self, batch: dict[str, np.ndarray]) -> Any:
        import pyarrow as pa
        from ray.data.extensions import ArrowTensorArray

        from rag.embedder import text_key

        texts = [str(t) for t in batch["embedded"]]
        keys = [text_key(self.embedder.cache_tag, t) for t in texts]
        missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in self.cached}
        order = sorted(missing)
        fresh = dict(
            zip(
                order,
                self.embedder.encode_blocks([missing[k] for k in order], progress=False),
                strict=True,
            )
        )
        n = len(texts)
        vectors = np.zeros((n, self.dimension), dtype=np.float32)
        blocks: list[TokenBlock | None] = [fresh.get(key) for key in keys]
        for i, block in enumerate(blocks):
            if block is not None:
                vectors[i] = block.vector
        # An Arrow table, not a dict of numpy arrays: each binary column is one buffer
        # that Ray writes to its object store as it is, where a numpy column of bytes
        # objects would be a Python object per row, copied again into Arrow.
        table = pa.table(
            {
                "chunk": pa.array([str(c) for c in batch["chunk"]], pa.large_string()),
                "key": pa.array(keys, pa.string()),
                "cached": pa.array([b is None for b in blocks], pa.bool_()),
                "vector": ArrowTensorArray.from_numpy(vectors),
                "tokens": _binary(
                    [None if b is None else b.embeddings for b in blocks], np.float16
                ),
                "token_ids": _binary([None if b is None else b.ids for b in blocks], np.int32),
                "token_spans": _binary([None if b is None else b.spans for b in blocks], np.int32),
            }
        )
        del fresh, blocks
        trim_heap()
        return table


def _binary(arrays: list[np.ndarray | None], dtype: type) -> Any:
    """A large-binary Arrow column whose row i holds `arrays[i]` as `dtype` bytes (empty
    for None), built on one concatenated buffer without a copy per row."""
    import pyarrow as pa

    parts = [np.ascontiguousarray(a, dtype=dtype).reshape(-1) for a in arrays if a is not None]
    data = np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)
    sizes = [0 if a is None else a.size * np.dtype(dtype).itemsize for a in arrays]
    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    return pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(arrays), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


# --- the driver ------------------------------------------------------------------------


def _chunk_from_json(row: str) -> Chunk:
    fields = json.loads(row)
    return Chunk(**{**fields, "sentences": tuple(tuple(s) for s in fields["sentences"])})


def _block(row: dict[str, Any], i: int, dimension: int) -> TokenBlock:
    return TokenBlock(
        vector=np.asarray(row["vector"][i], dtype=np.float32),
        embeddings=np.frombuffer(row["tokens"][i], dtype=np.float16).reshape(-1, dimension),
        ids=np.frombuffer(row["token_ids"][i], dtype=np.int32),
        spans=np.frombuffer(row["token_spans"][i], dtype=np.int32).reshape(-1, 2),
    )


def _columns(table: Any) -> dict[str, Any]:
    """A pipeline batch (an Arrow table) as columns for `_records`: numpy arrays, and for
    each binary column a list of uint8 views of its rows into the table's buffers, which
    `_block` reads in place. Ray's own numpy conversion would copy every row of token
    embeddings into a bytes object (SciFact: 27 MB a batch of 256, twice in flight)."""
    import pyarrow as pa
    from ray.data.block import BlockAccessor

    binary = [
        name
        for name in table.column_names
        if pa.types.is_binary(table.schema.field(name).type)
        or pa.types.is_large_binary(table.schema.field(name).type)
    ]
    columns: dict[str, Any] = BlockAccessor.for_block(table.drop_columns(binary)).to_numpy()
    for name in binary:
        rows: list[np.ndarray] = []
        for chunk in table.column(name).chunks:
            width = np.int64 if pa.types.is_large_binary(chunk.type) else np.int32
            _, offsets_buffer, data_buffer = chunk.buffers()
            offsets = np.frombuffer(offsets_buffer, dtype=width)[
                chunk.offset : chunk.offset + len(chunk) + 1
            ]
            data = np.frombuffer(data_buffer or b"", dtype=np.uint8)
            rows.extend(data[offsets[i] : offsets[i + 1]] for i in range(len(chunk)))
        columns[name] = rows
    return columns


def _progress(show: bool | None, documents: int) -> Any:
    if not (sys.stderr.isatty() if show is None else show):
        return None
    from tqdm import tqdm

    return tqdm(desc="embedding", unit="chunk", postfix={"documents": f"0/{documents}"})


class RayExecutor:
    """Runs the embedding part of a build on Ray (module docstring). A local Ray, when
    needed, is started by `run` and stopped when it ends (or by `close`)."""

    name = "ray"

    def __init__(
        self,
        embedder: EmbedderConfig,
        config: RayConfig | None = None,
        *,
        progress: bool | None = None,
    ) -> None:
        self.embedder_config = embedder
        self.config = config or RayConfig()
        self.progress = progress
        self._model = model_info(embedder)
        self._stack = contextlib.ExitStack()
        # Set by run(): the session it used (the benchmark reports its start-up time).
        self.session: RaySession | None = None

    def model_info(self) -> ModelInfo:
        return self._model

    def close(self) -> None:
        self._stack.close()

    def _session(self) -> RaySession:
        import ray

        if ray.is_initialized() and self.config.address is None and "RAY_ADDRESS" not in os.environ:
            # A caller (a test session, the benchmark) already connected this process.
            ctx = ray.get_runtime_context()
            return RaySession(
                address=ctx.gcs_address,
                startup_seconds=0.0,
                local=False,
                cpus=float(ray.cluster_resources().get("CPU", 0.0)),
            )
        return self._stack.enter_context(
            ray_session(
                self.config.address,
                self.config.local_cpus,
                self.config.local_object_store_bytes,
            )
        )

    def run(self, plan: BuildPlan) -> Iterator[EncodedBatch]:
        try:
            yield from self._run(plan)
        finally:
            self.close()

    def _run(self, plan: BuildPlan) -> Iterator[EncodedBatch]:
        session = self.session = self._session()
        import ray
        import ray.data
        from ray.exceptions import RayError

        arrow_system_pool()  # the driver takes every block (rag/runtime.py)

        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # corpus order, as the seam requires
        ctx.enable_progress_bars = False  # the driver shows its own, over chunks
        ctx.print_on_execution_start = False
        ctx.actor_task_retry_on_errors = False  # a bug in our code fails at once
        # Its errors reach the caller as exceptions (below); the full logs stay in
        # the Ray session folder.
        logging.getLogger("ray.data").setLevel(logging.CRITICAL)

        cfg = self.config
        threads = max(1, cfg.threads_per_actor)
        actors = cfg.actors or max(1, int(session.cpus // threads))
        cached_ref = ray.put(frozenset(plan.cache.keys()))
        docs = plan.documents
        # Lent to the writer actors for the pipeline (None: the driver writes all).
        lend = plan.backend.remote_writes() if plan.backend is not None else None
        bar = _progress(self.progress, len(docs))
        try:
            with lend if lend is not None else contextlib.nullcontext() as spec:
                with warnings.catch_warnings():
                    # Ray Data takes max_restarts / max_task_retries as "remote args",
                    # which it deprecates without a named replacement yet (2.60); its
                    # own default is to restart for ever, which would turn a worker
                    # that always dies into a hang.
                    warnings.simplefilter("ignore", DeprecationWarning)
                    ds = self._dataset(plan, cfg, session.cpus, actors, threads, cached_ref, spec)
                yield from self._blocks(ds, plan, bar)
        except RayError as exc:
            raise RayBuildError(_explain(exc)) from None
        finally:
            if bar is not None:
                bar.close()

    def _blocks(self, ds: Any, plan: BuildPlan, bar: Any) -> Iterator[EncodedBatch]:
        """The pipeline's rows as blocks of an actor call's size (at most
        `plan.block_size`) records, in corpus order."""
        dim = self._model.dimension
        # The driver's block is the size of an actor's call, not the local build's
        # block: the local build holds a block's token embeddings once, where here the
        # batch Ray hands over and the one it prefetches are held beside it (SciFact's
        # chunks average 139 word pieces: 104 MB of float16 token embeddings per 1,024).
        size = min(self.config.batch_size, plan.block_size)
        block = EncodedBatch([], 0)
        fresh: set[str] = set()  # keys embedded in the block being filled
        sources: set[str] = set()
        # Batches of an actor call's size arrive as the actors finish them (the bar
        # moves with them).
        for table in ds.iter_batches(
            batch_size=size,
            batch_format="pyarrow",
            prefetch_batches=1,
        ):
            batch = _columns(table)
            for record, cached, written, writer in self._records(batch, plan, dim):
                block.records.append(record)
                if not cached:
                    fresh.add(record.key)
                if written is not None:
                    block.written[record.id] = written
                    block.writers[writer] = block.writers.get(writer, 0) + 1
                sources.add(record.chunk.source)
                if len(block.records) == size:
                    # Texts embedded, each distinct text once per block: an actor
                    # embeds a text once per call, and a block is a call's size.
                    block.embedded = len(fresh)
                    yield block
                    block, fresh = EncodedBatch([], 0), set()
            if bar is not None:
                bar.update(len(batch["chunk"]))
                bar.set_postfix(documents=f"{len(sources)}/{len(plan.documents)}")
        if block.records:
            block.embedded = len(fresh)
            yield block

    def _dataset(
        self,
        plan: BuildPlan,
        cfg: RayConfig,
        cpus: float,
        actors: int,
        threads: int,
        cached_ref: Any,
        spec: Any = None,
    ) -> Any:
        import ray.data

        # The driver's precision, imposed on every actor (see the module docstring).
        embedder = replace(self.embedder_config, document_precision=self._model.document_precision)
        items = [{"source": d.source, "sha256": d.sha256} for d in plan.documents]
        # Blocks of about 64 documents: fine enough to stream, few enough to schedule.
        blocks = max(1, min(len(items), max(4 * actors, len(items) // 64), 2000))
        # Fractional CPUs for the actors: with whole ones they can hold every core while
        # the stages they wait for get none. The read and chunk tasks get what is left,
        # up to one CPU each: each task runs in a worker process that loads the
        # libraries (~290 MB here), so on a small machine one at a time is plenty (the
        # actors' model is the bottleneck) and on a cluster they spread over the nodes.
        actor_cpus = 0.5 * threads
        writers = 0 if spec is None else (actors if spec.concurrent else 1)
        left = cpus - actors * actor_cpus - writers * cfg.writer_cpus
        task_cpus = max(0.25, min(1.0, left))
        corpus = str(plan.corpus.resolve())
        ds = (
            ray.data.from_items(items, override_num_blocks=blocks)
            .map_batches(read_documents, fn_kwargs={"corpus": corpus}, num_cpus=task_cpus)
            .map_batches(
                chunk_batch, fn_kwargs={"chunker": plan.config.chunker}, num_cpus=task_cpus
            )
            .map_batches(
                ChunkEmbedder,
                batch_size=cfg.batch_size,
                compute=ray.data.ActorPoolStrategy(size=actors),
                fn_constructor_kwargs={
                    "config": embedder,
                    "threads": threads,
                    "cached": cached_ref,
                },
                num_cpus=actor_cpus,
                max_restarts=cfg.max_restarts,
                max_task_retries=cfg.max_restarts,
                # Ray starts workers at niceness 15, below its own daemons; an embedding
                # actor there lost its cores to the driver and Ray's bookkeeping (Ray
                # / local 1.78 on SciFact, docs/scaling.md), likely because with one of
                # its two model threads preempted the other waits at the next barrier.
                # The build's own work runs at the priority a local build has.
                runtime_env={"env_vars": {"RAY_worker_niceness": "0"}},
            )
        )
        if spec is None:
            return ds
        from rag.index.executors.ray_writer import PointWriter

        placement: dict[str, Any] = {}
        if not spec.concurrent:
            # An embedded store is a folder on the driver's machine, held by one
            # process at a time: one writer, on this node.
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            node = ray.get_runtime_context().get_node_id()
            placement["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node, soft=False)
        return ds.map_batches(
            PointWriter,
            batch_size=cfg.batch_size,
            compute=ray.data.ActorPoolStrategy(size=writers),
            fn_constructor_kwargs={"spec": spec, "dimension": self._model.dimension},
            num_cpus=cfg.writer_cpus,
            # A writer that dies is restarted and its batch upserted again: the same
            # points under the same ids, so a retried batch writes nothing twice.
            max_restarts=cfg.max_restarts,
            max_task_retries=cfg.max_restarts,
            **placement,
        )

    @staticmethod
    def _records(
        batch: dict[str, np.ndarray], plan: BuildPlan, dim: int
    ) -> Iterator[tuple[ChunkRecord, bool, np.ndarray | None, str]]:
        """(record, whether its encoding came from the previous index, and for a row a
        writer actor stored: its text vector and the writer) of each row."""
        keys = [str(k) for k in batch["key"]]
        cached = batch["cached"]
        written = batch.get("written")
        found = plan.cache.lookup(sorted({k for k, c in zip(keys, cached, strict=True) if c}))
        for i, (row, key) in enumerate(zip(batch["chunk"], keys, strict=True)):
            chunk = _chunk_from_json(str(row))
            if written is not None and written[i]:
                # Stored by a writer: what the driver needs, no token embeddings.
                record = ChunkRecord(
                    id=chunk_id(chunk.source, chunk.start, chunk.end),
                    chunk=chunk,
                    vector=np.asarray(batch["vector"][i], dtype=np.float32),
                    key=key,
                    token_ids=np.frombuffer(batch["token_ids"][i], dtype=np.int32),
                )
                yield record, False, batch["text_vector"][i], str(batch["writer"][i])
                continue
            if cached[i]:
                block = found.get(key)
                if block is None:
                    raise RayBuildError(
                        f"the previous index lost the encoding of {chunk.source} "
                        f"[{chunk.start}:{chunk.end}] during the build; run it again"
                    )
            else:
                block = _block(batch, i, dim)
            yield ChunkRecord.from_block(chunk, block, key), bool(cached[i]), None, ""


# The line a Python traceback ends on: "OSError: [Errno 28] No space left on device".
_RAISED = re.compile(r"^(?:\w+\.)*\w*(?:Error|Exception|Exit|Interrupt): .+")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _explain(exc: BaseException) -> str:
    """One line for a failed pipeline: the first error's own message, not Ray's trace.

    A worker's exception reaches the driver as text only (Ray keeps no __cause__ chain
    across processes), and that text ends on Ray's advice about retries. The first
    exception line the text holds that is not Ray's own wrapper is the one raised in
    the worker, so it is the cause: a full disk, a killed process, a bug.
    """
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, RagError):
            return str(cause)
        cause = cause.__cause__
    lines = [_ANSI.sub("", line).strip() for line in str(exc).splitlines()]
    lines = [line for line in lines if line]
    raised = next(
        (line for line in lines if _RAISED.match(line) and not line.startswith("ray.")), None
    )
    summary = raised or (lines[-1] if lines else type(exc).__name__)
    return (
        f"the Ray build failed: {summary[:500]}; the previous index is untouched "
        "(see the Ray logs under /tmp/ray/session_latest/logs)"
    )
