"""Answerer: pick the best verbatim sentence from the top passages, or abstain.

Entry point: `extract_answer(index, question, hits, by_id, config)`.

No reader model ships offline, so the answer is chosen from the text's own structure.
Every sentence of the top passages (and of their folded duplicates) is scored by:
- late interaction between the question and the sentence's own tokens (in context), and
  with the sentence before it too, since a quote often follows the line naming the
  speaker;
- the IDF-weighted share of the question's terms the sentence contains, plus the share
  of its terms the question lacks (an answer adds something to the question);
- its passage's fused retrieval score (the heading and the sentence before count there);
- whether it holds what the question asks for (a date for "when", a number for "how
  many", a quotation for "what did X say").
Whether the corpus answers at all is judged on the chosen sentence and its passage: how
well the question's words are matched by the sentence's tokens and by the passage's
tokens with their context (late interaction, IDF-weighted, so the rare words of the
question must find a match). Below `min_score` the answer is null.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rag.config import AnswererConfig
from rag.index import Index
from rag.index.late import maxsim
from rag.question import Question
from rag.retriever import Hit, query_weights


@dataclass(frozen=True)
class Answer:
    text: str | None
    chunk_id: int | None
    start: int | None
    end: int | None
    confidence: float
    evidence: float


def coverage(index: Index, terms: list[str], present: frozenset[str]) -> float:
    """IDF-weighted share of the question's terms found among a text's terms `present`.
    A term the corpus never uses gets the highest IDF."""
    if not terms:
        return 0.0
    n = index.sparse.size
    top_idf = math.log(1 + (n + 0.5) / 0.5)
    weights = {t: index.sparse.idf(t) or top_idf for t in set(terms)}
    total = sum(weights.values())
    return sum(w for t, w in weights.items() if t in present) / total if total else 0.0


def _sentence_late(
    index: Index, cid: int, question: Question, weights: np.ndarray
) -> list[tuple[float, float]]:
    """Late interaction of the question with each sentence's tokens (contextual, from the
    chunk), alone and together with the sentence before it: "Ghalibaf told a rally ..."
    followed by the quote itself, which names nobody."""
    chunk = index.chunks[cid]
    tokens, spans = index.tokens.block(cid)
    shift = chunk.text_offset - chunk.start  # file offset -> offset in the embedded text
    scores = []
    for i, (s, e) in enumerate(chunk.sentences):
        window_start = chunk.sentences[i - 1][0] if i else s
        inside = (spans[:, 0] >= s + shift) & (spans[:, 1] <= e + shift)
        window = (spans[:, 0] >= window_start + shift) & (spans[:, 1] <= e + shift)
        own = maxsim(question.tokens, weights, tokens[inside])
        scores.append((own, maxsim(question.tokens, weights, tokens[window]) if i else own))
    return scores


def novelty(question: Question, terms: frozenset[str]) -> float:
    """Share of the sentence's terms the question does not already contain: an answer
    adds something to the question rather than repeating it."""
    return len(terms - set(question.terms)) / len(terms) if terms else 0.0


def evidence(hit: Hit, sentence_late: float) -> float:
    """How strongly the chosen sentence and its passage match the question, in [0, 1]."""
    passage = hit.late_context if hit.late_context else hit.dense
    sentence = sentence_late if sentence_late else passage
    return 0.5 * sentence + 0.5 * passage


def extract_answer(
    index: Index,
    question: Question,
    hits: list[Hit],
    by_id: dict[int, Hit],
    config: AnswererConfig,
) -> Answer:
    """The best sentence of the top passages, with its offsets, or a null answer."""
    if not hits:
        return Answer(None, None, None, None, 0.0, 0.0)
    weights = query_weights(index, question)
    best: tuple[float, int, int, int, float] | None = None  # score, chunk, start, end, late
    for rank, hit in enumerate(hits[: config.passages]):
        for cid in [hit.chunk_id, *hit.also_in]:
            chunk = index.chunks[cid]
            passage = by_id[cid].score if cid in by_id else hit.score
            late = _sentence_late(index, cid, question, weights)
            for (s, e), (own, window) in zip(chunk.sentences, late, strict=True):
                lexical = 0.0
                if config.use_lexical:
                    terms = index.span_terms(chunk.source, s, e)
                    lexical = coverage(index, question.terms, terms) + novelty(question, terms)
                typed = float(
                    config.use_type
                    and question.expects is not None
                    and index.span_holds(question.expects, chunk.source, s, e)
                )
                if not config.use_window:
                    window = own
                score = (
                    config.w_sentence * own
                    + config.w_window * window
                    + config.w_lexical * lexical
                    + config.w_passage * passage
                    + config.w_type * typed
                    - config.rank_penalty * rank
                )
                sentence_late = max(own, window)
                if best is None or score > best[0]:
                    best = (score, cid, s, e, sentence_late)
    assert best is not None
    _, cid, s, e, sentence_late = best
    strength = evidence(by_id.get(cid) or hits[0], sentence_late)
    # Map evidence to (0, 1) around the abstention threshold: 0.5 exactly at it.
    confidence = round(
        1.0 / (1.0 + math.exp(-config.confidence_slope * (strength - config.min_score))), 4
    )
    if strength < config.min_score:
        return Answer(None, None, None, None, confidence, strength)
    text = index.documents[index.chunks[cid].source].text[s:e]
    return Answer(text, cid, s, e, confidence, strength)
