"""Retriever: dense and BM25 candidates fused into one ranking, near-duplicates folded.

Entry point: `retrieve(index, question, vector, k, config)`.

The fused score is a convex mix of three pieces, each in [0, 1]-ish:
- the cosine of the question and the chunk (embedded with its heading context),
- the best cosine of the question and one sentence of the chunk (a long paragraph
  about several things still matches a question about one of them),
- BM25 divided by the best BM25 for this question (so the mix is scale-free).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rag.config import RetrieverConfig
from rag.index import Index


@dataclass
class Hit:
    chunk_id: int
    score: float
    dense: float
    sentence: float
    bm25: float
    # Per-sentence cosines, aligned with the chunk's `sentences`.
    sentence_scores: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    also_in: list[int] = field(default_factory=list)


def weights(config: RetrieverConfig) -> tuple[float, float, float]:
    """(dense, sentence, bm25) weights for the configured mode."""
    if config.mode == "dense":
        return config.w_dense, config.w_sentence, 0.0
    if config.mode == "bm25":
        return 0.0, 0.0, 1.0
    if config.mode == "hybrid":
        return config.w_dense, config.w_sentence, config.w_bm25
    raise ValueError(f"unknown retriever mode {config.mode!r}; valid: hybrid, dense, bm25")


def score_candidates(
    index: Index, question: str, vector: np.ndarray, config: RetrieverConfig
) -> list[Hit]:
    """Every candidate chunk with its fused score, best first, duplicates not folded."""
    n = len(index.chunks)
    k = min(config.candidates, n)
    w_dense, w_sent, w_bm25 = weights(config)
    candidates: set[int] = set()
    if w_dense or w_sent:
        _, ids = index.dense.search(vector[None, :], k)
        candidates.update(int(i) for i in ids[0] if i >= 0)
    bm25 = index.sparse.scores(question)
    best_bm25 = float(bm25.max()) if n else 0.0
    if best_bm25 > 0:
        top = np.argpartition(-bm25, k - 1)[:k] if k < n else np.arange(n)
        candidates.update(int(i) for i in top if bm25[i] > 0)

    hits = []
    offsets = index.sentence_offsets
    for cid in candidates:
        dense = float(index.chunk_vectors[cid] @ vector)
        sentence_scores = index.sentence_vectors[offsets[cid] : offsets[cid + 1]] @ vector
        sentence = float(sentence_scores.max()) if len(sentence_scores) else dense
        bm = float(bm25[cid]) / best_bm25 if best_bm25 > 0 else 0.0
        score = w_dense * dense + w_sent * sentence + w_bm25 * bm
        hits.append(Hit(cid, score, dense, sentence, bm, sentence_scores))
    hits.sort(key=lambda h: (-h.score, h.chunk_id))
    return hits


def fold_duplicates(index: Index, hits: list[Hit], k: int) -> list[Hit]:
    """Keep the best of each group of near-duplicates, listing the group in `also_in`,
    until `k` hits are kept."""
    kept: list[Hit] = []
    folded: set[int] = set()
    for hit in hits:
        if hit.chunk_id in folded:
            continue
        if len(kept) == k:
            break
        hit.also_in = list(index.duplicates[hit.chunk_id])
        folded.update(hit.also_in)
        kept.append(hit)
    return kept


def retrieve(
    index: Index, question: str, vector: np.ndarray, k: int, config: RetrieverConfig
) -> tuple[list[Hit], dict[int, Hit]]:
    """Top `k` folded hits, and every scored candidate by chunk id."""
    scored = score_candidates(index, question, vector, config)
    by_id = {h.chunk_id: h for h in scored}
    return fold_duplicates(index, scored, k), by_id
