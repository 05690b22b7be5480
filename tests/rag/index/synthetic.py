"""A tiny synthetic corpus for fast tests: three files of hand-written paragraphs, random
unit vectors and token embeddings (seeded), as `ChunkRecord`s and as a loaded `Index`."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np

from rag.chunker import Chunk
from rag.config import IndexConfig, PipelineConfig
from rag.corpus import Document
from rag.index.backend import ChunkLinks, ChunkRecord, chunk_id, create_backend
from rag.index.manifest import BackendInfo, Counts, Manifest, ModelInfo
from rag.index.store import Index

DIM = 8
TEXTS = {
    "a.txt": [
        "Tehran bazaar merchants went on strike in December.",
        "The protests spread to Mashhad and Isfahan.",
        "Officials blamed foreign agents for the unrest.",
    ],
    "b.txt": [
        "Moscow watched the unrest with caution.",
        "The Kremlin believes the protests have peaked.",
    ],
    "c.txt": [
        "Oil exports fell sharply in January.",
        "Strike action closed the Abadan refinery for a week of strike talks.",
    ],
}


def records(seed: int = 0) -> list[ChunkRecord]:
    rng = np.random.default_rng(seed)
    records = []
    for source, paragraphs in TEXTS.items():
        start = 0
        for number, text in enumerate(paragraphs, 1):
            end = start + len(text)
            context = "Heading" if number > 1 else ""
            chunk = Chunk(
                source=source,
                paragraph=number,
                start=start,
                end=end,
                text=text,
                tokens=len(text.split()),
                context=context,
                sentences=((start, end),),
            )
            n = len(chunk.embedded.split())
            vector = rng.normal(size=DIM).astype(np.float32)
            tokens = rng.normal(size=(n, DIM)).astype(np.float32)
            tokens /= np.linalg.norm(tokens, axis=1, keepdims=True)
            spans, at = [], 0
            for word in chunk.embedded.split():
                at = chunk.embedded.index(word, at)
                spans.append((at, at + len(word)))
                at += len(word)
            records.append(
                ChunkRecord(
                    id=chunk_id(source, start, end),
                    chunk=chunk,
                    vector=vector / np.linalg.norm(vector),
                    key=f"key-{source}-{number}",
                    tokens=tokens.astype(np.float16),
                    token_ids=rng.integers(100, 120, size=n).astype(np.int32),
                    token_spans=np.asarray(spans, dtype=np.int32).reshape(-1, 2),
                )
            )
            start = end + 1
    return records


def documents() -> dict[str, Document]:
    return {
        source: Document(source, "\n".join(paragraphs), "0" * 64)
        for source, paragraphs in TEXTS.items()
    }


def build(
    folder: Path,
    config: PipelineConfig | None = None,
    duplicates: dict[int, tuple[int, ...]] | None = None,
    seed: int = 0,
) -> Index:
    """A local-backend index of the synthetic corpus at `folder`, opened for ranking."""
    config = config or PipelineConfig()
    written = records(seed)
    backend = create_backend(folder, DIM, IndexConfig())
    backend.add(written)
    backend.link({cid: ChunkLinks(dups) for cid, dups in (duplicates or {}).items()})
    backend.flush()
    manifest = Manifest(
        build_id=uuid.uuid4().hex,
        built_at="2026-01-01T00:00:00+00:00",
        corpus="",
        model=ModelInfo("test", DIM, 256, "float32"),
        tokenizer=config.chunker.encoding,
        config=config,
        backend=BackendInfo("local", backend.settings()),
        executor="local",
        counts=Counts(len(TEXTS), len(written), len(written), 0),
        sources={},
        files={},
    )
    return Index(folder, manifest, config, documents(), backend)
