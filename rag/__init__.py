"""Retrieval QA over a folder of articles: verbatim answers with exact citations.

    from rag import build_index, QA
    build_index("seeds", "index")
    QA.load("index").ask("When did the protests in Iran begin?")

One module per stage: corpus → chunker → embedder → index (dense, sparse) → retriever
→ answerer, tied together by pipeline.
"""

from rag.config import (
    AnswererConfig,
    ChunkerConfig,
    EmbedderConfig,
    PipelineConfig,
    RetrieverConfig,
)
from rag.errors import (
    CorpusError,
    IndexMismatchError,
    IndexNotFoundError,
    InvalidQuestionError,
    RagError,
    SourceNotFoundError,
)
from rag.index import build_index, load_index
from rag.pipeline import QA
from rag.result import Citation, Result

__all__ = [
    "QA",
    "AnswererConfig",
    "ChunkerConfig",
    "Citation",
    "CorpusError",
    "EmbedderConfig",
    "IndexMismatchError",
    "IndexNotFoundError",
    "InvalidQuestionError",
    "PipelineConfig",
    "RagError",
    "Result",
    "RetrieverConfig",
    "SourceNotFoundError",
    "build_index",
    "load_index",
]
