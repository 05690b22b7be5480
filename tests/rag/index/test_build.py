"""The build through the backend contract, with the real model: streaming in small blocks
gives the index one block gives, the cache works across blocks, and ids are stable."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rag.chunker import chunk_documents
from rag.config import ChunkerConfig
from rag.corpus import read_corpus
from rag.embedder import Embedder
from rag.index import build_index, chunk_id, load_index
from tests.servers import ROOT

pytestmark = pytest.mark.slow
CHUNKER = ChunkerConfig()


def _embedded(row: dict) -> str:
    return f"{row['context']}\n{row['text']}" if row["context"] else row["text"]


def _rows(index: Path) -> list[dict]:
    return [json.loads(line) for line in (index / "chunks.jsonl").open()]


def test_small_blocks_give_the_same_index(
    seed_index_dir: Path, tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rag.index.build as build

    blocks: list[list[tuple[str, int]]] = []
    real_encode = build.encode_chunks

    def spy(embedder: Embedder, chunks: list, *args, **kwargs):  # type: ignore[no-untyped-def]
        blocks.append([(c.source, c.start) for c in chunks])
        return real_encode(embedder, chunks, *args, **kwargs)

    monkeypatch.setattr(build, "encode_chunks", spy)
    out = tmp_path / "index"
    report = build_index(ROOT / "seeds", out, embedder=embedder, use_cache=False, block_size=50)
    assert (report.chunks, report.embedded) == (218, 218)
    # Chunked document by document as blocks fill, the blocks are those of chunking the
    # whole corpus first: 50, 50, 50, 50, 18 chunks.
    every = [(c.source, c.start) for c in chunk_documents(read_corpus(ROOT / "seeds"), CHUNKER)]
    assert blocks == [every[lo : lo + 50] for lo in range(0, 218, 50)]
    one, small = _rows(seed_index_dir), _rows(out)
    # Same chunks, ids, order, duplicates and neighbours.
    assert small == one
    for row in small:
        assert row["id"] == chunk_id(row["source"], row["start"], row["end"])
    assert sum(row["previous"] is None for row in small) == 5  # one first chunk per file
    a, b = load_index(seed_index_dir), load_index(out)
    ids = [row["id"] for row in one]
    va = np.stack([r.vector for r in a.records(ids)])
    vb = np.stack([r.vector for r in b.records(ids)])
    # Other batches, other padding: vectors agree to the precision documents run in.
    assert np.abs(va - vb).max() < 2e-2
    assert (va * vb).sum(axis=1).min() > 0.9999


def test_rebuild_in_blocks_reuses_every_vector(
    seed_index_dir: Path, tmp_path: Path, embedder: Embedder
) -> None:
    out = tmp_path / "index"
    shutil.copytree(seed_index_dir, out)
    corpus = tmp_path / "corpus"
    shutil.copytree(ROOT / "seeds", corpus)
    # A new first line shifts every offset of that file: new ids, same texts, so the
    # cache (by text) still serves them.
    first = sorted(corpus.iterdir())[0]
    first.write_text("A new opening line.\n" + first.read_text(encoding="utf-8"), "utf-8")
    report = build_index(corpus, out, embedder=embedder, block_size=40)
    old = {row["id"] for row in _rows(seed_index_dir)}
    new = _rows(out)
    # Embedded: exactly the texts (with their context) the old index lacks, the new
    # line among them.
    texts_before = {_embedded(r) for r in _rows(seed_index_dir)}
    fresh = {_embedded(r) for r in new} - texts_before
    assert "A new opening line." in fresh
    assert (report.chunks, report.embedded, report.reused) == (219, len(fresh), 219 - len(fresh))
    moved = [r for r in new if r["source"] == first.name]
    assert moved and not {r["id"] for r in moved} & old
    assert {r["id"] for r in new if r["source"] != first.name} <= old
