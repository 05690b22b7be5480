"""The index manifest: what an index was built from and how to open it, in one type.

`Manifest.load(folder)` and `Manifest.save(folder)` are the only places manifest.json is
read and written; everything else reads typed fields. `stale_reason` is the one rule for
"would building again give a different index".
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rag.config import (
    AnswererConfig,
    ChunkerConfig,
    EmbedderConfig,
    IndexConfig,
    PipelineConfig,
    RetrieverConfig,
    from_dict,
)
from rag.errors import IndexMismatchError, IndexNotFoundError

# 2: chunks have stable ids (rag.index.backend.chunk_id) and the backend is recorded.
FORMAT_VERSION = 2
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    dimension: int
    max_seq_length: int
    # Precision the documents were embedded in ("float32" or "bfloat16"), resolved.
    document_precision: str
    # What ran the model at build time (GET /health reports it).
    runtime: str = "unknown"


@dataclass(frozen=True)
class BackendInfo:
    kind: str
    # What the backend needs to open this build again (SearchBackend.settings()).
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Counts:
    documents: int
    chunks: int
    sentences: int
    tokens: int


@dataclass(frozen=True)
class Manifest:
    build_id: str
    built_at: str
    corpus: str
    model: ModelInfo
    tokenizer: str
    config: PipelineConfig
    backend: BackendInfo
    # How the chunks were embedded: "local" or "ray"; does not change the index.
    executor: str
    counts: Counts
    sources: dict[str, str]  # file name -> sha256
    files: dict[str, str]  # index file -> sha256 (every file of the folder but this one)
    versions: dict[str, str] = field(default_factory=dict)
    build: dict[str, int] = field(default_factory=dict)  # embedded, reused
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, folder: Path) -> Manifest:
        """A manifest from its JSON form; a missing or mistyped key fails here with its
        name, instead of a KeyError deep inside loading."""
        if not isinstance(data, dict):
            raise IndexMismatchError(folder, "manifest.json is not a JSON object")
        if data.get("format_version") != FORMAT_VERSION:
            raise IndexMismatchError(
                folder,
                f"format version {data.get('format_version')} is not {FORMAT_VERSION}",
            )
        _check_shape(folder, data, _SHAPE)
        try:
            saved = data["config"]
            config = PipelineConfig(
                chunker=from_dict(ChunkerConfig, saved["chunker"]),
                embedder=from_dict(EmbedderConfig, saved["embedder"]),
                index=from_dict(IndexConfig, saved["index"]),
                retriever=from_dict(RetrieverConfig, saved["retriever"]),
                answerer=from_dict(AnswererConfig, saved["answerer"]),
            )
            return cls(
                build_id=data["build_id"],
                built_at=data["built_at"],
                corpus=data.get("corpus", ""),
                model=from_dict(ModelInfo, data["model"]),
                tokenizer=data.get("tokenizer", config.chunker.encoding),
                config=config,
                backend=from_dict(BackendInfo, data["backend"]),
                executor=data.get("executor", "local"),
                counts=from_dict(Counts, data["counts"]),
                sources=data["sources"],
                files=data["files"],
                versions=data.get("versions", {}),
                build=data.get("build", {}),
            )
        except (TypeError, ValueError) as exc:
            raise IndexMismatchError(folder, f"manifest.json is invalid ({exc})") from None

    @classmethod
    def load(cls, folder: Path) -> Manifest:
        folder = Path(folder)
        if not (folder / MANIFEST).is_file():
            raise IndexNotFoundError(folder)
        try:
            data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise IndexMismatchError(folder, f"manifest.json is unreadable ({exc})") from None
        return cls.from_dict(data, folder)

    def save(self, folder: Path) -> None:
        """Write manifest.json into `folder` and make its bytes durable (the build swaps
        the folder into place right after)."""
        path = Path(folder) / MANIFEST
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False))
        with path.open("rb") as fh:
            os.fsync(fh.fileno())

    def stale_reason(
        self, sources: dict[str, str], config: PipelineConfig, document_precision: str
    ) -> str | None:
        """Why building `sources` with `config` would give another index than this one,
        or None. The one rule: same files, same settings of every stage (the saved
        retriever and answerer settings are the defaults the index loads with), same
        model and document precision (the backend kind is part of the settings)."""
        if self.sources != sources:
            return "the corpus files changed since the index was built"
        if self.config.embedder.model != config.embedder.model:
            return "the embedding model changed"
        if self.model.document_precision != document_precision:
            return (
                f"the document precision changed ({self.model.document_precision} "
                f"-> {document_precision})"
            )
        if self.config.index.backend != config.index.backend:
            return f"the backend changed ({self.config.index.backend} -> {config.index.backend})"
        for name in ("chunker", "embedder", "index", "retriever", "answerer"):
            if getattr(self.config, name) != getattr(config, name):
                return f"the {name} settings changed"
        return None


# Keys Manifest.from_dict relies on, with the type of their value (a dict: nested keys).
_SHAPE: dict = {
    "build_id": str,
    "built_at": str,
    "model": {"name": str, "dimension": int, "document_precision": str},
    "config": {
        "chunker": dict,
        "embedder": dict,
        "index": dict,
        "retriever": dict,
        "answerer": dict,
    },
    "backend": {"kind": str},
    "counts": {"documents": int, "chunks": int, "sentences": int},
    "sources": dict,
    "files": dict,
}


def _check_shape(folder: Path, data: dict, shape: dict, at: str = "") -> None:
    for key, kind in shape.items():
        name = f"{at}{key}"
        value = data.get(key)
        if value is None:
            raise IndexMismatchError(folder, f"manifest.json lacks {name!r}")
        if isinstance(kind, dict):
            if not isinstance(value, dict):
                raise IndexMismatchError(folder, f"manifest.json's {name!r} is not an object")
            _check_shape(folder, value, kind, f"{name}.")
        elif not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise IndexMismatchError(
                folder, f"manifest.json's {name!r} is not a {kind.__name__} ({value!r})"
            )
