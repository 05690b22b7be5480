"""Collection settings of the Qdrant backend, read from one JSON file.

`deploy/qdrant/collection.json` is the file a deployment edits. Its `collection` object
is the body of Qdrant's `PUT /collections/{name}` (the same JSON the recipe in
docs/scaling.md sends with curl), so one file configures the backend, the cluster and
the engine-parity test (`edge_config` turns it into Qdrant Edge's config). The other
keys say which payload fields get an index, the HNSW ef at search time and the upsert
batch size.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qdrant_client import models

from rag.errors import RagError

DEFAULT_SETTINGS = Path(__file__).resolve().parents[3] / "deploy" / "qdrant" / "collection.json"
# A deployment's own settings file (and the tests' small-vector one) replaces the default.
ENV_SETTINGS = "RAG_QDRANT_SETTINGS"
# Named vectors the backend writes and queries: each must be in the settings.
DENSE, TOKENS, SPARSE = "dense", "tokens", "bm25"
_SCHEMAS = {
    "keyword": models.PayloadSchemaType.KEYWORD,
    "integer": models.PayloadSchemaType.INTEGER,
}


@dataclass(frozen=True)
class CollectionSettings:
    body: models.CreateCollection
    raw: dict[str, Any]
    payload_indexes: dict[str, models.PayloadSchemaType]
    hnsw_ef: int
    upsert_batch: int
    path: Path

    @property
    def dimension(self) -> int:
        return int(self.vectors[DENSE].size)

    @property
    def vectors(self) -> dict[str, models.VectorParams]:
        vectors = self.body.vectors
        assert isinstance(vectors, dict)  # checked by load_settings
        return vectors

    def create_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `QdrantClient.create_collection`."""
        fields = self.body.model_dump(exclude_none=True, exclude={"vectors", "sparse_vectors"})
        return {
            **{name: getattr(self.body, name) for name in fields},
            "vectors_config": self.body.vectors,
            "sparse_vectors_config": self.body.sparse_vectors,
        }


def load_settings(path: Path | None = None, dimension: int | None = None) -> CollectionSettings:
    """Read and check the settings file (`path`, else $RAG_QDRANT_SETTINGS, else
    deploy/qdrant/collection.json). `dimension`, when given, is the model's: every
    vector must have that size."""
    path = Path(path or os.environ.get(ENV_SETTINGS) or DEFAULT_SETTINGS)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        body = models.CreateCollection(**raw["collection"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RagError(f"Qdrant collection settings {path} are unusable: {exc}") from None
    vectors = body.vectors if isinstance(body.vectors, dict) else {}
    missing = [n for n in (DENSE, TOKENS) if n not in vectors]
    if SPARSE not in (body.sparse_vectors or {}):
        missing.append(SPARSE)
    if missing:
        raise RagError(
            f"Qdrant collection settings {path} lack the named vectors {missing}; "
            f"the backend needs dense {DENSE!r}, multivector {TOKENS!r} and sparse {SPARSE!r}"
        )
    if vectors[TOKENS].multivector_config is None:
        raise RagError(f"Qdrant collection settings {path}: {TOKENS!r} must be a multivector")
    if body.sparse_vectors[SPARSE].modifier != models.Modifier.IDF:  # type: ignore[index]
        raise RagError(
            f"Qdrant collection settings {path}: sparse {SPARSE!r} needs modifier 'idf' "
            "(BM25's idf is applied by Qdrant)"
        )
    if dimension is not None:
        wrong = {n: v.size for n, v in vectors.items() if v.size != dimension}
        if wrong:
            raise RagError(
                f"Qdrant collection settings {path} give vector sizes {wrong}, "
                f'but the model\'s dimension is {dimension}; set "size": {dimension}'
            )
    indexes = {}
    for name, kind in raw.get("payload_indexes", {}).items():
        if kind not in _SCHEMAS:
            raise RagError(
                f"Qdrant collection settings {path}: payload index {name!r} has type {kind!r}; "
                f"valid choices: {sorted(_SCHEMAS)}"
            )
        indexes[name] = _SCHEMAS[kind]
    return CollectionSettings(
        body=body,
        raw=raw,
        payload_indexes=indexes,
        hnsw_ef=int(raw.get("search", {}).get("hnsw_ef", 128)),
        upsert_batch=int(raw.get("upsert_batch", 64)),
        path=path,
    )
