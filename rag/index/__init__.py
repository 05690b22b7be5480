"""Index stage: chunks stored in a search backend behind one contract (backend.py), built
by build.py, opened by store.py, described by manifest.py."""

from rag.index.backend import ChunkRecord, SearchBackend, chunk_id
from rag.index.build import BuildReport, build_index, stale_reason
from rag.index.manifest import Manifest
from rag.index.store import Index, load_index

__all__ = [
    "BuildReport",
    "ChunkRecord",
    "Index",
    "Manifest",
    "SearchBackend",
    "build_index",
    "chunk_id",
    "load_index",
    "stale_reason",
]
