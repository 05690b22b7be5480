"""Every metric on small cases worked out by hand; the arithmetic is in the comments."""

from __future__ import annotations

import math

import pytest

from rag.evaluation import metrics
from rag.evaluation.metrics import Outcome


def cite(source: str, paragraph: int, *also: tuple[str, int]) -> dict:
    return {
        "source": source,
        "paragraph": paragraph,
        "also_in": [{"source": s, "paragraph": p} for s, p in also],
    }


GOLD = [("a.txt", 4), ("b.txt", 1)]


def test_first_gold_rank_counts_also_in_as_the_same_citation() -> None:
    citations = [cite("c.txt", 2), cite("c.txt", 9, ("b.txt", 1)), cite("a.txt", 4)]
    # Rank 1 is c¶2 (not gold); rank 2 is c¶9, whose folded copy b¶1 is gold -> 2.
    assert metrics.first_gold_rank(citations, GOLD) == 2
    assert metrics.first_gold_rank([cite("c.txt", 2)], GOLD) is None
    assert metrics.first_gold_rank([], GOLD) is None
    # Same file, wrong paragraph is a miss.
    assert metrics.first_gold_rank([cite("a.txt", 5)], GOLD) is None


def test_hit_at_k() -> None:
    # rank 1 is within 1 and 5; rank 3 within 5 only; None (no gold cited) within none.
    assert (metrics.hit_at(1, 1), metrics.hit_at(1, 5)) == (1.0, 1.0)
    assert (metrics.hit_at(3, 1), metrics.hit_at(3, 5)) == (0.0, 1.0)
    assert (metrics.hit_at(None, 1), metrics.hit_at(None, 5)) == (0.0, 0.0)


def test_reciprocal_rank_and_mrr() -> None:
    # MRR@10 of ranks [1, 2, 4, None, 11]: (1 + 1/2 + 1/4 + 0 + 0) / 5 = 1.75 / 5 = 0.35.
    ranks = [1, 2, 4, None, 11]
    assert metrics.mean(metrics.reciprocal_rank(r, 10) for r in ranks) == pytest.approx(0.35)
    assert metrics.reciprocal_rank(10, 10) == pytest.approx(0.1)  # rank 10 still counts
    assert metrics.reciprocal_rank(11, 10) == 0.0


def test_phrase_match_is_case_insensitive_containment_with_folded_quotes() -> None:
    assert metrics.phrase_match("He is a Leading IRAN expert.", ["leading iran expert"])
    # Any one of the phrases suffices.
    assert metrics.phrase_match("It began on December 28.", ["late December", "December 28"])
    # Curly apostrophe in the answer, straight one in the phrase; whitespace collapsed.
    assert metrics.phrase_match("Russia’s  embassy said", ["russia's embassy"])
    assert not metrics.phrase_match("It began in January.", ["December 28"])
    assert not metrics.phrase_match(None, ["December 28"])
    assert not metrics.phrase_match("anything", None)


def test_percentile_interpolates_linearly() -> None:
    # p50 of [1, 2, 3, 4]: position (4-1)*0.5 = 1.5 -> 2 + 0.5*(3-2) = 2.5.
    assert metrics.percentile([4, 1, 3, 2], 50) == pytest.approx(2.5)
    # p95 of 1..20: position 19*0.95 = 18.05 -> 19 + 0.05*(20-19) = 19.05.
    assert metrics.percentile(list(range(1, 21)), 95) == pytest.approx(19.05)
    assert metrics.percentile([7.0], 95) == 7.0
    assert metrics.percentile([], 50) is None


def test_ndcg_matches_a_hand_computation_with_graded_qrels() -> None:
    qrels = {"d1": 2, "d2": 1, "d3": 0, "d4": 1}
    ranked = ["d3", "d1", "x", "d2"]
    # Linear gains by rank: d3=0, d1=2, x=0, d2=1.
    # DCG  = 0/log2(2) + 2/log2(3) + 0/log2(4) + 1/log2(5) = 1.26186 + 0.43068 = 1.69254
    # IDCG = gains sorted [2, 1, 1]: 2/1 + 1/log2(3) + 1/log2(4) = 2 + 0.63093 + 0.5 = 3.13093
    # nDCG = 1.69254 / 3.13093 = 0.54059
    assert metrics.ndcg_at(ranked, qrels, 10) == pytest.approx(0.54059, abs=1e-5)
    dcg = 2 / math.log2(3) + 1 / math.log2(5)
    idcg = 2 + 1 / math.log2(3) + 1 / math.log2(4)
    assert metrics.ndcg_at(ranked, qrels, 10) == pytest.approx(dcg / idcg)
    # Cut at 2: DCG@2 = 2/log2(3) = 1.26186; IDCG@2 = 2 + 1/log2(3) = 2.63093 -> 0.47962
    assert metrics.ndcg_at(ranked, qrels, 2) == pytest.approx(0.47962, abs=1e-5)
    # The ideal ranking scores 1; nothing relevant judged scores 0.
    assert metrics.ndcg_at(["d1", "d2", "d4"], qrels) == pytest.approx(1.0)
    assert metrics.ndcg_at(["d1"], {"d1": 0}) == 0.0


def test_ndcg_binary_relevance_one_of_two_found() -> None:
    # SciFact-style binary qrels, the only relevant doc found at rank 1 of 2 relevant:
    # DCG = 1; IDCG = 1 + 1/log2(3) = 1.63093 -> 0.61315.
    assert metrics.ndcg_at(["a", "z"], {"a": 1, "b": 1}) == pytest.approx(0.61315, abs=1e-5)


def test_recall_at_k() -> None:
    qrels = {"d1": 2, "d2": 1, "d3": 0, "d4": 1}  # relevant (grade >= 1): d1, d2, d4
    # Top 3 of [d1, x, d2, d4] holds d1 and d2: 2/3. Top 100 holds all three: 3/3.
    assert metrics.recall_at(["d1", "x", "d2", "d4"], qrels, 3) == pytest.approx(2 / 3)
    assert metrics.recall_at(["d1", "x", "d2", "d4"], qrels, 100) == 1.0
    # The grade-0 document does not count as relevant.
    assert metrics.recall_at(["d3"], qrels, 100) == 0.0


def test_verbatim() -> None:
    text = "Alpha. Beta gamma."
    assert metrics.verbatim(text, 7, 17, "Beta gamma")
    assert not metrics.verbatim(text, 7, 17, "Beta gamma.")  # off by one
    assert not metrics.verbatim(text, 7, 99, "Beta gamma.")  # beyond the file
    assert metrics.verbatim(None, 0, 1, "A") is None  # file unknown: not checked


def outcome(kind: str, answerable: bool, **kw) -> Outcome:
    return Outcome(id=f"{kind}-{len(kw)}", kind=kind, answerable=answerable, **kw)


def test_summarize_and_by_kind() -> None:
    outcomes = [
        # answerable: ranks 1, 3, None; answers: match, answered-no-match, abstained
        outcome(
            "fact",
            True,
            rank=1,
            answered=True,
            answer_match=True,
            citations_verbatim=(True, True),
            answer_verbatim=True,
            latency=0.010,
        ),
        outcome(
            "fact",
            True,
            rank=3,
            answered=True,
            citations_verbatim=(True, False),
            answer_verbatim=True,
            latency=0.020,
        ),
        outcome("paraphrase", True, rank=None, citations_verbatim=(True,), latency=0.030),
        # unanswerable: one correct null, one answered, one error
        outcome("unanswerable", False, citations_verbatim=(True,), latency=0.040),
        outcome(
            "unanswerable",
            False,
            answered=True,
            citations_verbatim=(True,),
            answer_verbatim=False,
            latency=0.050,
        ),
        outcome("unanswerable", False, error="boom"),
    ]
    s = metrics.summarize(outcomes)
    assert (s["n"], s["answerable"], s["unanswerable"], s["errors"]) == (6, 3, 3, 1)
    assert s["hit@1"] == pytest.approx(1 / 3)  # only rank 1 of 3 answerable
    assert s["hit@5"] == pytest.approx(2 / 3)  # ranks 1 and 3
    assert s["mrr@10"] == pytest.approx((1 + 1 / 3 + 0) / 3)  # = 0.4444
    assert s["answer_match"] == pytest.approx(1 / 3)
    assert s["false_abstention"] == pytest.approx(1 / 3)  # the paraphrase abstained
    assert s["abstain_unanswerable"] == pytest.approx(1 / 3)  # the error is not a null
    # citations: 2 + 2 + 1 + 1 + 1 = 7 checked, 1 false -> 6/7
    # answers: 3 answered (fact, fact, unanswerable), 1 false -> 2/3
    # all: (6 + 2) / (7 + 3) = 0.8
    assert s["verbatim_citations"] == pytest.approx(6 / 7)
    assert s["verbatim_answers"] == pytest.approx(2 / 3)
    assert s["verbatim"] == pytest.approx(0.8)
    # latencies of non-error questions (ms): 10 20 30 40 50 -> p50 30; p95 at position
    # 4*0.95 = 3.8 -> 40 + 0.8*10 = 48
    assert s["latency_p50_ms"] == pytest.approx(30.0)
    assert s["latency_p95_ms"] == pytest.approx(48.0)
    assert set(metrics.METRICS) <= set(s)

    kinds = metrics.by_kind(outcomes)
    assert list(kinds) == ["fact", "paraphrase", "unanswerable"]
    assert kinds["fact"]["hit@1"] == pytest.approx(0.5)  # ranks 1, 3
    assert kinds["paraphrase"]["false_abstention"] == 1.0
    assert kinds["unanswerable"]["hit@1"] is None  # not measured, not 0
    assert kinds["unanswerable"]["abstain_unanswerable"] == pytest.approx(1 / 3)


def test_summarize_of_nothing_is_unmeasured() -> None:
    s = metrics.summarize([])
    assert s["n"] == 0 and s["hit@1"] is None and s["latency_p95_ms"] is None
