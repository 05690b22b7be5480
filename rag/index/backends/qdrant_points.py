"""A chunk record as a Qdrant point and back: the named vectors and the payload.

Payload: every field of the chunk (source, paragraph, start, end, text, tokens,
heading, context, sentences), its cache key, its links (duplicates, previous) and the
word-piece ids and character spans of its token embeddings, which ranking needs next
to the `tokens` multivector.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
from qdrant_client import models

from rag.chunker import Chunk
from rag.index.backend import ChunkLinks, ChunkRecord
from rag.index.backends import qdrant_sparse
from rag.index.backends.qdrant_settings import DENSE, SPARSE, TOKENS
from rag.index.backends.qdrant_support import TokenCache
from rag.text import tokenize

_CHUNK_FIELDS = tuple(Chunk.__dataclass_fields__)


def link_payload(links: ChunkLinks) -> dict[str, Any]:
    return {"duplicates": list(links.duplicates), "previous": links.previous}


def sparse(vector: qdrant_sparse.SparseVector) -> models.SparseVector:
    return models.SparseVector(indices=vector.indices, values=vector.values)


def to_point(record: ChunkRecord, links: ChunkLinks | None, avgdl: float) -> models.PointStruct:
    """The point of a record (with its tokens); `links` replace the record's own."""
    if record.tokens is None or record.token_ids is None or record.token_spans is None:
        raise ValueError(f"record {record.id} has no tokens")
    chunk = record.chunk
    links = links or ChunkLinks(record.duplicates, record.previous)
    payload = {
        **asdict(chunk),
        "key": record.key,
        **link_payload(links),
        "token_ids": np.asarray(record.token_ids).tolist(),
        "token_spans": np.asarray(record.token_spans).reshape(-1, 2).tolist(),
    }
    bm25 = qdrant_sparse.document_vector(tokenize(chunk.embedded), avgdl)
    return models.PointStruct(
        id=record.id,
        vector={
            DENSE: np.asarray(record.vector, dtype=np.float32).tolist(),
            # float16 values, as the collection stores them (its datatype).
            TOKENS: np.asarray(record.tokens, dtype=np.float16).astype(np.float32).tolist(),
            SPARSE: sparse(bm25),
        },
        payload=payload,
    )


def from_point(point: Any, tokens: bool, cache: TokenCache, dimension: int) -> ChunkRecord:
    """The record of a retrieved point; with `tokens`, its token arrays (from `cache`
    when held there, else from the point, then kept in `cache`)."""
    payload = dict(point.payload or {})
    vectors = point.vector or {}
    fields = {k: payload[k] for k in _CHUNK_FIELDS if k in payload}
    fields["sentences"] = tuple(tuple(s) for s in fields.get("sentences", ()))
    chunk = Chunk(**fields)
    cid = int(point.id)
    common = {
        "id": cid,
        "chunk": chunk,
        "vector": np.asarray(vectors[DENSE], dtype=np.float32),
        "key": str(payload["key"]),
        "duplicates": tuple(int(i) for i in payload.get("duplicates", ())),
        "previous": payload.get("previous"),
    }
    if not tokens:
        return ChunkRecord(**common)
    held = cache.get(cid)
    if held is None:
        emb = np.asarray(vectors.get(TOKENS, []), dtype=np.float16).reshape(-1, dimension)
        ids = np.asarray(payload.get("token_ids", []), dtype=np.int32)
        spans = np.asarray(payload.get("token_spans", []), dtype=np.int32).reshape(-1, 2)
        held = (emb, ids, spans)
        cache.put(cid, held)
    emb, ids, spans = held
    return ChunkRecord(**common, tokens=emb, token_ids=ids, token_spans=spans)
