"""Retriever: dense and BM25 candidates, reranked into one ranking, duplicates folded.

Entry point: `retrieve(index, question, k, config)`.

1. Candidates: the `candidates` best chunks by pooled cosine (FAISS) and by BM25.
2. Each candidate gets a fused score, a weighted sum of signals in [0, 1]:
   - late interaction (MaxSim of the question's word pieces against the chunk's own
     tokens, and against its tokens with the context: heading, sentence before);
   - BM25 divided by the best BM25 for this question (scale-free);
   - whether the chunk holds what the question asks for (a date for "when"...);
   - the pooled cosine.
   The weights were chosen on the seeds question set by cross-validation (README).
3. Near-duplicates of a better hit are folded into its `also_in`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rag.config import RetrieverConfig
from rag.index import Index
from rag.index.late import maxsim_many
from rag.question import Question

MODES = ("hybrid", "dense", "bm25")


@dataclass
class Hit:
    chunk_id: int
    score: float
    dense: float
    late: float
    late_context: float
    bm25: float
    typed: float
    also_in: list[int] = field(default_factory=list)


def query_weights(index: Index, question: Question) -> np.ndarray:
    """IDF of the question's word pieces over the chunks: rare words weigh most."""
    return index.tokens.idf(question.token_ids)


def _candidates(
    index: Index, question: Question, bm25: np.ndarray, config: RetrieverConfig
) -> list[int]:
    n = len(index.chunks)
    k = min(config.candidates, n)
    found: set[int] = set()
    if config.mode != "bm25":
        _, ids = index.dense.search(question.vector[None, :], k)
        found.update(int(i) for i in ids[0] if i >= 0)
    if config.mode != "dense" and n:
        top = np.argpartition(-bm25, k - 1)[:k] if k < n else np.arange(n)
        found.update(int(i) for i in top if bm25[i] > 0)
    return sorted(found)


def score_candidates(index: Index, question: Question, config: RetrieverConfig) -> list[Hit]:
    """Every candidate chunk with its fused score, best first, duplicates not folded."""
    if config.mode not in MODES:
        raise ValueError(f"unknown retriever mode {config.mode!r}; valid choices: {list(MODES)}")
    bm25 = index.sparse.scores(question.terms)
    best_bm25 = float(bm25.max()) if len(bm25) else 0.0
    weights = query_weights(index, question)
    ids = _candidates(index, question, bm25, config)
    late = late_context = np.zeros(len(ids), dtype=np.float32)
    if config.late_interaction and config.mode == "hybrid":
        own_from = np.asarray([index.chunks[c].text_offset for c in ids], dtype=np.int64)
        late, late_context = maxsim_many(
            question.tokens, weights, index.tokens, ids, own_from, question.token_sims
        )
        if not config.use_context:
            late_context = late
    dense_all = index.chunk_vectors[ids] @ question.vector if ids else np.zeros(0)
    hits = []
    for i, cid in enumerate(ids):
        chunk = index.chunks[cid]
        dense = float(dense_all[i])
        bm = float(bm25[cid]) / best_bm25 if best_bm25 > 0 else 0.0
        typed = float(
            question.expects is not None
            and index.span_holds(question.expects, chunk.source, chunk.start, chunk.end)
        )
        if config.mode == "dense":
            score = dense
        elif config.mode == "bm25":
            score = bm
        elif config.late_interaction:
            score = (
                config.w_late * float(late[i])
                + config.w_late_context * float(late_context[i])
                + config.w_bm25 * bm
                + config.w_type * typed
                + config.w_dense * dense
            )
        else:  # hybrid on pooled vectors only: the late-interaction weight goes to them
            w_pooled = config.w_late + config.w_late_context + config.w_dense
            score = w_pooled * dense + config.w_bm25 * bm + config.w_type * typed
        hits.append(Hit(cid, score, dense, float(late[i]), float(late_context[i]), bm, typed))
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
    index: Index, question: Question, k: int, config: RetrieverConfig
) -> tuple[list[Hit], dict[int, Hit]]:
    """Top `k` folded hits, and every scored candidate by chunk id."""
    scored = score_candidates(index, question, config)
    return fold_duplicates(index, scored, k), {h.chunk_id: h for h in scored}
