"""Index stage: dense (FAISS) and sparse (BM25) indexes plus chunk records, on disk."""

from rag.index.dense import DenseIndex
from rag.index.sparse import SparseIndex
from rag.index.store import (
    BuildReport,
    Index,
    build_index,
    load_index,
    read_manifest,
    stale_reason,
)

__all__ = [
    "BuildReport",
    "DenseIndex",
    "Index",
    "SparseIndex",
    "build_index",
    "load_index",
    "read_manifest",
    "stale_reason",
]
