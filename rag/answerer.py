"""Answerer: pick the best verbatim sentence from the top passages, or abstain.

Entry point: `extract_answer(index, question, vector, hits, config)`.

No reader model ships offline, so the answer is chosen from the text's own structure:
- every sentence of the top passages (and of their folded duplicates) is scored by its
  cosine with the question, the share of the question's rare words it contains
  (IDF-weighted, so names and numbers count most), the passage's fused score, and
  whether it holds what the question asks for (a date for "when", a number for "how many");
- the words a sentence leans on (its heading, the sentence before a quote) count too;
- the evidence that the corpus answers at all is the best of those signals on the
  answer's passage; below `min_score` the answer is null.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from rag.config import AnswererConfig
from rag.index import Index, tokenize
from rag.retriever import Hit

_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_DATE = re.compile(
    rf"\b(?:{_MONTHS}|\d{{4}}|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)\b"
)
_NUMBER = re.compile(
    r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|hundreds?|thousands?|millions?|dozens?)\b",
    re.I,
)
_NAME = re.compile(r"\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)+")
_QUOTE = re.compile(r"[“\"]")


def _expects(question: str) -> re.Pattern[str] | None:
    """What kind of text would answer the question, from its wh-word."""
    q = question.lower()
    if re.search(r"\bwhen\b|\bwhat (?:date|day|year|month)\b|\bwhich (?:date|day|year|month)\b", q):
        return _DATE
    if re.search(r"\bhow (?:many|much|long|old)\b|\bwhat (?:number|share|percentage)\b", q):
        return _NUMBER
    if re.search(r"\bwho\b|\bwhose\b|\bwhom\b", q):
        return _NAME
    if re.search(r"\bwhat did .* (?:say|write|tell|warn|call)\b|\bquote\b", q):
        return _QUOTE
    return None


@dataclass(frozen=True)
class Answer:
    text: str | None
    chunk_id: int | None
    start: int | None
    end: int | None
    confidence: float
    evidence: float


def coverage(index: Index, question_tokens: list[str], text: str) -> float:
    """IDF-weighted share of the question's tokens found in `text`. A token the corpus
    never uses gets the highest IDF: a question about something absent scores low."""
    if not question_tokens:
        return 0.0
    present = set(tokenize(text))
    n = index.sparse.size
    top_idf = math.log(1 + (n + 0.5) / 0.5)
    weights = {t: index.sparse.idf(t) or top_idf for t in set(question_tokens)}
    total = sum(weights.values())
    return sum(w for t, w in weights.items() if t in present) / total if total else 0.0


def _sentence_scores(
    index: Index, cid: int, vector: np.ndarray, by_id: dict[int, Hit]
) -> np.ndarray:
    hit = by_id.get(cid)
    if hit is not None and len(hit.sentence_scores):
        return hit.sentence_scores
    offsets = index.sentence_offsets
    return index.sentence_vectors[offsets[cid] : offsets[cid + 1]] @ vector


def extract_answer(
    index: Index,
    question: str,
    vector: np.ndarray,
    hits: list[Hit],
    by_id: dict[int, Hit],
    config: AnswererConfig,
) -> Answer:
    """The best sentence of the top passages, with its offsets, or a null answer."""
    if not hits:
        return Answer(None, None, None, None, 0.0, 0.0)
    q_tokens = tokenize(question)
    expects = _expects(question)
    best: tuple[float, int, int, int, float] | None = None  # score, cid, start, end, evidence
    for rank, hit in enumerate(hits[: config.passages]):
        for cid in [hit.chunk_id, *hit.also_in]:
            chunk = index.chunks[cid]
            scored = by_id.get(cid)
            passage = scored.score if scored is not None else hit.score
            context = chunk.context if config.use_context else ""
            chunk_cov = (
                coverage(index, q_tokens, f"{context}\n{chunk.text}") if config.use_lexical else 0.0
            )
            cosines = _sentence_scores(index, cid, vector, by_id)
            for (s, e), cos in zip(chunk.sentences, cosines, strict=True):
                sentence = index.documents[chunk.source].text[s:e]
                lex = coverage(index, q_tokens, sentence) if config.use_lexical else 0.0
                score = 0.45 * float(cos) + 0.25 * lex + 0.10 * chunk_cov + 0.20 * passage
                if expects is not None and expects.search(sentence):
                    score += 0.05
                score -= 0.01 * rank  # ties go to the better-ranked passage
                evidence = 0.5 * max(float(cos), float(index.chunk_vectors[cid] @ vector)) + 0.5 * (
                    chunk_cov if config.use_lexical else float(cos)
                )
                if best is None or score > best[0]:
                    best = (score, cid, s, e, evidence)
    assert best is not None
    score, cid, s, e, evidence = best
    # Map evidence to (0, 1) around the abstention threshold: 0.5 exactly at it.
    confidence = 1.0 / (1.0 + math.exp(-12.0 * (evidence - config.min_score)))
    if evidence < config.min_score:
        return Answer(None, None, None, None, round(confidence, 4), evidence)
    text = index.documents[index.chunks[cid].source].text[s:e]
    return Answer(text, cid, s, e, round(confidence, 4), evidence)
