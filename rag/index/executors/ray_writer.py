"""Stage 4 of the Ray build, when the backend takes writes from other processes
(`SearchBackend.remote_writes`, the qdrant backend): writer actors upsert each batch's
points into the build's new collection, and only light rows go on to the driver.

    .map_batches(ChunkEmbedder, ...)             3. embed (actor pool)
    .map_batches(PointWriter, ActorPoolStrategy) 4. write: each actor opens the
                                                    collection once (spec.open())
    .iter_batches()                              the driver: ids, chunks, text vectors,
                                                    token ids; never token embeddings

A row the embedding actor took from the embedding cache (`cached`: the previous index
has its encoding) has no encoding in the pipeline: it passes through unwritten, and
the driver writes it from the previous index as before (docs/scaling.md says why).
A written row carries, instead of its token embeddings, what the driver needs from
them: the vector of the chunk's own text (duplicate detection, `text_vector`) and
its word-piece ids (the backend's statistics), and which process wrote it.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from rag.index.backend import ChunkRecord
from rag.index.duplicates import text_vector
from rag.index.executors.ray_executor import _block, _chunk_from_json


class PointWriter:
    """Stage 4, one per writer actor: writes the freshly embedded rows of each batch
    through `spec.open()` and hands on light rows. The writer is closed when Ray
    shuts the actor down at the pipeline's end (`__del__`), which releases an
    embedded store's lock; the driver waits for that before it opens the store."""

    def __init__(self, spec: Any, dimension: int) -> None:
        from rag.runtime import configure

        configure()
        from rag.index.backends.qdrant_writer import writer_name

        self.dimension = dimension
        self.name = writer_name()
        self.writer = spec.open()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        fresh = ~np.asarray(batch["cached"], dtype=bool)
        records: list[ChunkRecord] = []
        vectors = np.zeros((len(fresh), self.dimension), dtype=np.float32)
        for i in np.flatnonzero(fresh):
            chunk = _chunk_from_json(str(batch["chunk"][i]))
            record = ChunkRecord.from_block(
                chunk, _block(batch, int(i), self.dimension), str(batch["key"][i])
            )
            records.append(record)
            vectors[i] = text_vector(record)
        self.writer.write(records)
        return {
            "chunk": batch["chunk"],
            "key": batch["key"],
            "cached": batch["cached"],
            "vector": batch["vector"],
            "token_ids": batch["token_ids"],
            "written": fresh,
            "text_vector": vectors,
            "writer": np.asarray([self.name if w else "" for w in fresh], dtype=object),
        }

    def __del__(self) -> None:
        # Ray calls this when it shuts the actor down gracefully; a killed actor's
        # lock goes with its process.
        with contextlib.suppress(Exception):
            self.writer.close()
