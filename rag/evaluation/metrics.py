"""Metric functions: pure, small, and each checked by hand in tests/rag/evaluation/test_metrics.py.

Conventions, so that figures mean the same thing from run to run:
- Ranks are 1-based; `None` means "not in the list".
- A citation matches gold when its own (source, paragraph) OR any of its `also_in`
  entries is gold: the retriever folds near-duplicate paragraphs (the same story told
  by two articles) into one citation, and citing either copy is a correct citation.
- Phrase matching is case-insensitive containment after folding curly quotes and dashes
  to ASCII and collapsing whitespace, so "Russia’s" in an article matches "Russia's"
  in a question set.
- nDCG@k and recall@k follow trec_eval / pytrec_eval as used by BEIR: linear gain
  (the qrel grade itself), discount log2(rank + 1), the ideal ranking built from every
  judged document with a positive grade; recall counts documents with grade >= 1.
- Percentiles interpolate linearly between order statistics (numpy's default), so p50
  of [1, 2, 3, 4] is 2.5.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from rag.text import normalise

Key = tuple[str, int]  # (source, paragraph)


def citation_keys(citation: Mapping) -> set[Key]:
    """Every (source, paragraph) a citation stands for: itself and its folded copies."""
    keys = {(citation["source"], int(citation["paragraph"]))}
    keys.update((ref["source"], int(ref["paragraph"])) for ref in citation.get("also_in") or [])
    return keys


def first_gold_rank(citations: Sequence[Mapping], gold: Iterable[Key]) -> int | None:
    """1-based rank of the first citation that matches any gold paragraph."""
    gold = set(gold)
    for rank, citation in enumerate(citations, start=1):
        if citation_keys(citation) & gold:
            return rank
    return None


def hit_at(rank: int | None, k: int) -> float:
    """1.0 when the first gold citation is within the top k."""
    return 1.0 if rank is not None and rank <= k else 0.0


def reciprocal_rank(rank: int | None, k: int = 10) -> float:
    """1/rank of the first gold citation, 0 beyond k (MRR@k averages this)."""
    return 1.0 / rank if rank is not None and rank <= k else 0.0


def phrase_match(answer: str | None, answer_any: Iterable[str] | None) -> bool:
    """Whether the answer contains at least one of the expected phrases."""
    if answer is None or not answer_any:
        return False
    got = normalise(answer)
    return any(normalise(phrase) in got for phrase in answer_any)


def mean(values: Iterable[float]) -> float | None:
    """Arithmetic mean, or None for no values (a figure that was not measured)."""
    values = list(values)
    return sum(values) / len(values) if values else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100), linear between order statistics."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def dcg(gains: Sequence[float]) -> float:
    """Discounted cumulative gain of gains in rank order: sum of g_i / log2(i + 1)."""
    return sum(g / math.log2(i + 1) for i, g in enumerate(gains, start=1))


def ndcg_at(ranked: Sequence[str], qrels: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k of a ranked list of document ids against graded judgements.

    Unjudged and non-positive documents gain 0; a query with no positive judgement
    scores 0 (trec_eval's convention)."""
    gains = [max(qrels.get(doc, 0), 0) for doc in ranked[:k]]
    ideal = sorted((g for g in qrels.values() if g > 0), reverse=True)[:k]
    best = dcg(ideal)
    return dcg(gains) / best if best > 0 else 0.0


def recall_at(ranked: Sequence[str], qrels: Mapping[str, int], k: int = 100) -> float:
    """Share of relevant documents (grade >= 1) found in the top k."""
    relevant = {doc for doc, grade in qrels.items() if grade >= 1}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def verbatim(file_text: str | None, start: int, end: int, text: str | None) -> bool | None:
    """Whether `text` is exactly file_text[start:end]; None when the file is unknown."""
    if file_text is None or text is None:
        return None
    return 0 <= start <= end <= len(file_text) and file_text[start:end] == text


@dataclass(frozen=True)
class Outcome:
    """What one question scored; the runner fills it, `summarize` averages it."""

    id: str
    kind: str
    answerable: bool
    rank: int | None = None  # first gold citation, 1-based
    answered: bool = False  # answer is not null
    # None when the question lists no expected phrases (retrieval figures only).
    answer_match: bool | None = False
    # One entry per citation, then the answer's: True/False, or None when not checkable.
    citations_verbatim: tuple[bool | None, ...] = ()
    answer_verbatim: bool | None = None
    latency: float | None = None  # seconds
    error: str | None = None


METRICS = (
    "hit@1",
    "hit@5",
    "mrr@10",
    "answer_match",
    "abstain_unanswerable",
    "false_abstention",
    "verbatim",
    "verbatim_citations",
    "verbatim_answers",
    "latency_p50_ms",
    "latency_p95_ms",
)


def _share(flags: Iterable[bool | None]) -> float | None:
    return mean(1.0 if f else 0.0 for f in flags if f is not None)


def summarize(outcomes: Sequence[Outcome]) -> dict[str, float | int | None]:
    """Every figure of a run. Retrieval and answer figures are over answerable questions,
    `abstain_unanswerable` over unanswerable ones. A question that errored counts as a
    failure everywhere (no gold cited, no answer, not a correct abstention). A figure is
    None when the set has no question it applies to."""
    answerable = [o for o in outcomes if o.answerable]
    unanswerable = [o for o in outcomes if not o.answerable]
    citations = [v for o in outcomes for v in o.citations_verbatim]
    answers = [o.answer_verbatim for o in outcomes if o.answered]
    latencies = [o.latency * 1000 for o in outcomes if o.latency is not None and not o.error]
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    return {
        "n": len(outcomes),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "errors": sum(o.error is not None for o in outcomes),
        "hit@1": mean(hit_at(o.rank, 1) for o in answerable),
        "hit@5": mean(hit_at(o.rank, 5) for o in answerable),
        "mrr@10": mean(reciprocal_rank(o.rank, 10) for o in answerable),
        "answer_match": mean(
            float(o.answer_match) for o in answerable if o.answer_match is not None
        ),
        "abstain_unanswerable": mean(
            float(not o.answered and o.error is None) for o in unanswerable
        ),
        "false_abstention": mean(float(not o.answered) for o in answerable),
        "verbatim": _share([*citations, *answers]),
        "verbatim_citations": _share(citations),
        "verbatim_answers": _share(answers),
        "latency_p50_ms": None if p50 is None else round(p50, 2),
        "latency_p95_ms": None if p95 is None else round(p95, 2),
    }


def by_kind(outcomes: Sequence[Outcome]) -> dict[str, dict[str, float | int | None]]:
    """`summarize` per question kind, kinds in order of first appearance."""
    kinds = dict.fromkeys(o.kind for o in outcomes)
    return {kind: summarize([o for o in outcomes if o.kind == kind]) for kind in kinds}
