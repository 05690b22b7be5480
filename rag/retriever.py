"""Retriever: dense and BM25 candidates, reranked into one ranking, duplicates folded.

Entry point: `retrieve(index, question, k, config, sources=None)`.

1. Candidates: the `candidates` best chunks by pooled cosine and by BM25, from the
   search backend (rag/index/backend.py), restricted to `sources` when given.
2. Each candidate gets named signals, each in [0, 1] (`SIGNALS`), and a fused score,
   the sum of signal * weight with the weights taken by name from
   `RetrieverConfig.weights`:
   - "late": late interaction (MaxSim, each word piece weighted by its IDF squared)
     of the question's word pieces against the chunk's own tokens; "late_context":
     against its tokens with the context (heading, sentence before);
   - "bm25": BM25 divided by the best BM25 among the candidates (scale-free; the best
     BM25 chunk is always a candidate);
   - "type": whether the chunk holds what the question asks for (a date for "when"...);
   - "dense": the pooled cosine.
   The weights were chosen on the seeds question set by cross-validation (README).
3. Near-duplicates of a better hit are folded into its `also_in`.

Adding a signal: a function `(Candidates) -> array of values` in `SIGNALS` and a weight
of the same name in `RetrieverConfig.weights`. `RetrieverConfig.off` switches signals
off by name (`scripts/evaluate.py --compare` does, one at a time).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from rag.config import RetrieverConfig
from rag.index import ChunkRecord, Index
from rag.question import Question

MODES = ("hybrid", "dense", "bm25")


@dataclass
class Hit:
    chunk_id: int
    score: float
    # Signal name -> value in [0, 1] (SIGNALS), as they entered the fused score.
    signals: dict[str, float] = field(default_factory=dict)
    also_in: list[int] = field(default_factory=list)


@dataclass
class Candidates:
    """The candidate chunks of one question, with what several signals share."""

    index: Index
    question: Question
    config: RetrieverConfig
    records: list[ChunkRecord]

    @cached_property
    def late_pair(self) -> tuple[np.ndarray, np.ndarray]:
        """MaxSim against each chunk's own tokens and against them with its context."""
        if not self.config.late_interaction or self.config.mode != "hybrid":
            zeros = np.zeros(len(self.records), dtype=np.float32)
            return zeros, zeros
        weights = query_weights(self.index, self.question, self.config.square_idf)
        own, full = self.index.backend.late_interaction(
            self.question.tokens, weights, self.records, self.question.token_sims
        )
        return own, (full if self.config.use_context else own)


def _dense(c: Candidates) -> np.ndarray:
    if not c.records:
        return np.zeros(0)
    return np.stack([r.vector for r in c.records]) @ c.question.vector


def _bm25(c: Candidates) -> np.ndarray:
    raw = c.index.backend.lexical_scores(c.question.terms, [r.id for r in c.records])
    best = float(raw.max()) if len(raw) else 0.0
    return np.asarray([float(s) / best if best > 0 else 0.0 for s in raw])


def _type(c: Candidates) -> np.ndarray:
    expects = c.question.expects
    return np.asarray(
        [
            float(
                expects is not None
                and c.index.span_holds(expects, r.chunk.source, r.chunk.start, r.chunk.end)
            )
            for r in c.records
        ]
    )


# Name -> function giving each candidate's value, in the order the fused score adds them.
SIGNALS: dict[str, Callable[[Candidates], np.ndarray]] = {
    "late": lambda c: c.late_pair[0],
    "late_context": lambda c: c.late_pair[1],
    "bm25": _bm25,
    "type": _type,
    "dense": _dense,
}


def fused_weights(config: RetrieverConfig) -> dict[str, float]:
    """The weight of each signal in the fused score, by name, in the order they are
    added. "dense" and "bm25" modes rank by that signal alone; hybrid without late
    interaction gives the late-interaction weights to the pooled cosine."""
    if config.mode not in MODES:
        raise ValueError(f"unknown retriever mode {config.mode!r}; valid choices: {list(MODES)}")
    unknown = sorted((set(config.weights) | set(config.off)) - set(SIGNALS))
    if unknown:
        raise ValueError(f"unknown retriever signals {unknown}; valid choices: {list(SIGNALS)}")
    if config.mode != "hybrid":
        return {config.mode: 1.0}
    weights = {name: config.weights.get(name, 0.0) for name in SIGNALS}
    if not config.late_interaction:
        pooled = weights["late"] + weights["late_context"] + weights["dense"]
        rest = {n: w for n, w in weights.items() if n not in ("late", "late_context", "dense")}
        weights = {"dense": pooled, **rest}
    return {n: (0.0 if n in config.off else w) for n, w in weights.items()}


def query_weights(index: Index, question: Question, square: bool = True) -> np.ndarray:
    """Weight of each of the question's word pieces in late interaction: its IDF over
    the chunks, squared when `square` (RetrieverConfig.square_idf), so that rare words
    weigh most and a passage matching only the common ones ("Iran", "protests") does
    not outrank one matching the question's rarer words."""
    idf = index.stats.piece_idf(question.token_ids)
    return idf * idf if square else idf


def _candidates(
    index: Index, question: Question, config: RetrieverConfig, sources: Collection[str] | None
) -> list[ChunkRecord]:
    """The union of the dense and lexical candidates, in corpus order."""
    backend = index.backend
    k = min(config.candidates, backend.count())
    found: set[int] = set()
    if k and config.mode != "bm25":
        found.update(cid for cid, _ in backend.dense_search(question.vector, k, sources))
    if k and config.mode != "dense":
        found.update(cid for cid, _ in backend.lexical_search(question.terms, k, sources))
    records = index.records(list(found))
    return sorted(records, key=lambda r: (r.chunk.source, r.chunk.start, r.chunk.end))


def score_candidates(
    index: Index,
    question: Question,
    config: RetrieverConfig,
    sources: Collection[str] | None = None,
) -> list[Hit]:
    """Every candidate chunk with its signals and fused score, best first (a tie goes to
    the chunk earlier in the corpus), duplicates not folded."""
    weights = fused_weights(config)
    c = Candidates(index, question, config, _candidates(index, question, config, sources))
    # float64, so that the sum below is the same double arithmetic, term by term, as a
    # Python loop over the signals in this order.
    values = {name: np.asarray(signal(c), dtype=np.float64) for name, signal in SIGNALS.items()}
    scores = np.zeros(len(c.records))
    for name, weight in weights.items():
        scores = scores + weight * values[name]
    columns = {name: v.tolist() for name, v in values.items()}
    hits = [
        Hit(record.id, score, {name: column[i] for name, column in columns.items()})
        for i, (record, score) in enumerate(zip(c.records, scores.tolist(), strict=True))
    ]
    # Best first; a tie goes to the chunk earlier in the corpus (the records' order).
    order = sorted(range(len(hits)), key=lambda i: (-hits[i].score, i))
    return [hits[i] for i in order]


def fold_duplicates(
    index: Index, hits: list[Hit], k: int, sources: Collection[str] | None = None
) -> list[Hit]:
    """Keep the best of each group of near-duplicates, listing the group in `also_in`,
    until `k` hits are kept. With `sources`, duplicates in other files are left out: the
    answerer reads `also_in` too, and must not answer from a file outside the search."""
    kept: list[Hit] = []
    folded: set[int] = set()
    records = {r.id: r for r in index.records([h.chunk_id for h in hits])}
    for hit in hits:
        if hit.chunk_id in folded:
            continue
        if len(kept) == k:
            break
        also_in = list(records[hit.chunk_id].duplicates)
        if sources is not None and also_in:
            also_in = [r.id for r in index.records(also_in) if r.chunk.source in sources]
        hit.also_in = also_in
        folded.update(hit.also_in)
        kept.append(hit)
    return kept


def retrieve(
    index: Index,
    question: Question,
    k: int,
    config: RetrieverConfig,
    sources: Collection[str] | None = None,
) -> tuple[list[Hit], dict[int, Hit]]:
    """Top `k` folded hits, and every scored candidate by chunk id. `sources` restricts
    the search to those files (checked by `Index.check_sources`)."""
    scored = score_candidates(index, question, config, sources)
    return fold_duplicates(index, scored, k, sources), {h.chunk_id: h for h in scored}
