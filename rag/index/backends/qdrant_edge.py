"""The Qdrant backend's collection settings on Qdrant Edge (PyPI `qdrant-edge-py`).

Qdrant Edge is Qdrant's own engine (segments, HNSW, sparse index, MaxSim) run in
process, with an API of its own. No Qdrant server can run on the machines this project
is tested on; Edge is how the settings and queries the backend relies on are checked on
the real engine (tests/rag/index/test_qdrant_edge.py) and timed at 100k+ points
(scripts/bench). The backend itself talks to Qdrant through qdrant-client only.
"""

from __future__ import annotations

from pathlib import Path

import qdrant_edge as edge
from qdrant_client import models

from rag.index.backends.qdrant_settings import CollectionSettings

# Qdrant's defaults for what the settings file leaves out.
_HNSW_DEFAULTS = {"m": 16, "ef_construct": 100, "full_scan_threshold": 10_000}
_DISTANCES = {
    models.Distance.COSINE: edge.Distance.Cosine,
    models.Distance.DOT: edge.Distance.Dot,
    models.Distance.EUCLID: edge.Distance.Euclid,
    models.Distance.MANHATTAN: edge.Distance.Manhattan,
}
_DATATYPES = {
    models.Datatype.FLOAT32: edge.VectorStorageDatatype.Float32,
    models.Datatype.FLOAT16: edge.VectorStorageDatatype.Float16,
    models.Datatype.UINT8: edge.VectorStorageDatatype.Uint8,
}
_SCHEMAS = {
    models.PayloadSchemaType.KEYWORD: edge.PayloadSchemaType.Keyword,
    models.PayloadSchemaType.INTEGER: edge.PayloadSchemaType.Integer,
}


def _hnsw(*configs: models.HnswConfigDiff | None) -> edge.HnswIndexConfig:
    """The HNSW config a vector gets: its own settings over the collection's over
    Qdrant's defaults."""
    merged = dict(_HNSW_DEFAULTS)
    for config in configs:
        if config is not None:
            merged.update(config.model_dump(exclude_none=True))
    return edge.HnswIndexConfig(
        m=merged["m"],
        ef_construct=merged["ef_construct"],
        full_scan_threshold=merged["full_scan_threshold"],
        on_disk=merged.get("on_disk"),
    )


def edge_config(settings: CollectionSettings) -> edge.EdgeConfig:
    """Edge's config for one shard of the collection the settings describe."""
    body = settings.body
    vectors = {}
    for name, params in settings.vectors.items():
        multivector = None
        if params.multivector_config is not None:
            multivector = edge.MultiVectorConfig(edge.MultiVectorComparator.MaxSim)
        vectors[name] = edge.EdgeVectorParams(
            size=params.size,
            distance=_DISTANCES[params.distance],
            on_disk=params.on_disk,
            multivector_config=multivector,
            datatype=_DATATYPES[params.datatype] if params.datatype else None,
            hnsw_config=_hnsw(body.hnsw_config, params.hnsw_config),
        )
    sparse = {}
    for name, params in (body.sparse_vectors or {}).items():
        sparse[name] = edge.EdgeSparseVectorParams(
            on_disk=params.index.on_disk if params.index else None,
            modifier=edge.Modifier.Idf if params.modifier == models.Modifier.IDF else None,
        )
    return edge.EdgeConfig(
        vectors=vectors, sparse_vectors=sparse, on_disk_payload=body.on_disk_payload
    )


def create_shard(path: Path, settings: CollectionSettings) -> edge.EdgeShard:
    """A new Edge shard at `path` with the settings' vectors and payload indexes."""
    shard = edge.EdgeShard.create(str(path), edge_config(settings))
    for field, schema in settings.payload_indexes.items():
        shard.update(edge.UpdateOperation.create_field_index(field, _SCHEMAS[schema]))
    return shard
