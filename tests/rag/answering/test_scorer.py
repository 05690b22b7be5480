"""Scorers, features and the regression fit (rag/answering/): exact values on small
hand-made inputs, no model."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pytest

from rag.answering import features as F
from rag.answering import training
from rag.answering.scorer import (
    WEIGHTS_FILE,
    HandScorer,
    LearnedScorer,
    LogisticModel,
    load_model,
    make_scorer,
)
from rag.config import AnswererConfig
from rag.question import Question


def test_hand_scorer_weighs_features_by_name() -> None:
    scorer = HandScorer({"a": 0.5, "b": -1.0}, min_score=0.48, slope=12.0)
    assert scorer.score({"a": 2.0, "b": 0.25, "c": 100.0}) == pytest.approx(0.75)
    assert scorer.evidence({"evidence": 0.61}) == 0.61


def test_confidence_is_one_half_exactly_at_the_threshold() -> None:
    hand = HandScorer({}, min_score=0.48, slope=12.0)
    assert hand.confidence(0.48) == 0.5
    assert hand.confidence(0.60) == pytest.approx(1 / (1 + math.exp(-12 * 0.12)))
    model = LogisticModel(("a",), np.zeros(1), np.ones(1), np.ones(1), 0.0)
    learned = LearnedScorer(model, min_probability=0.3)
    assert learned.confidence(0.3) == pytest.approx(0.5, abs=1e-12)
    assert learned.confidence(0.2) < 0.5 < learned.confidence(0.4)


def test_logistic_model_probability_and_round_trip() -> None:
    model = LogisticModel(
        ("a", "b"), np.array([1.0, 0.0]), np.array([2.0, 1.0]), np.array([1.0, -1.0]), 0.5
    )
    # ((3 - 1) / 2) * 1 + (1 / 1) * -1 + 0.5 = 0.5
    assert model.probability(np.array([[3.0, 1.0]]))[0] == pytest.approx(1 / (1 + math.exp(-0.5)))
    again = LogisticModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert again.names == model.names and again.intercept == 0.5
    assert np.array_equal(again.coef, model.coef)


def test_learned_scorer_reads_the_features_it_was_fitted_on() -> None:
    model = LogisticModel(("b",), np.zeros(1), np.ones(1), np.array([2.0]), -1.0)
    scorer = LearnedScorer(model, 0.5)
    assert scorer.score({"a": 9.0, "b": 0.5}) == pytest.approx(0.5)


def test_unknown_scorer_names_the_valid_choices() -> None:
    with pytest.raises(ValueError, match=r"\['hand', 'learned'\]"):
        make_scorer(AnswererConfig(scorer="neural"))  # type: ignore[arg-type]


def test_the_shipped_weights_file_reads_and_covers_known_features() -> None:
    model, threshold = load_model(str(WEIGHTS_FILE))
    assert set(model.names) <= set(F.FEATURES)
    assert len(model.coef) == len(model.names) == len(model.mean) == len(model.scale)
    data = json.loads(WEIGHTS_FILE.read_text())
    assert 0 < data["min_probability"] == threshold < 1
    # Trained by article: no article is in both halves.
    assert not set(data["trained_on"]["articles"]) & set(data["trained_on"]["held_out"])


def test_fit_recovers_the_base_rate_and_is_deterministic() -> None:
    # A constant feature carries nothing: the intercept alone fits the base rate 1/4.
    x = np.zeros((4, 1))
    y = np.array([1, 0, 0, 0])
    model = training.fit_logistic(x, y, ("a",))
    assert model.intercept == pytest.approx(math.log(1 / 3), abs=1e-9)
    assert model.coef[0] == pytest.approx(0.0, abs=1e-12)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    y = (x[:, 0] - 0.5 * x[:, 1] + rng.normal(scale=0.5, size=200) > 0).astype(int)
    first = training.fit_logistic(x, y, ("a", "b"))
    second = training.fit_logistic(x, y, ("a", "b"))
    assert first.to_dict() == second.to_dict()
    assert first.coef[0] > 0 > first.coef[1]


def test_threshold_keeping_and_best_per_group() -> None:
    scores = [0.1 * i for i in range(1, 11)]
    assert training.threshold_keeping(scores, 0.9) == pytest.approx(0.2)
    # Written with 6 decimals, rounded down: rounding to the nearest (0.061585) would
    # drop the score it is meant to keep.
    assert training.threshold_keeping([0.0615849, 0.9], 1.0) == 0.061584
    rows = [
        training.Row("q/own", 0, {}),
        training.Row("q/own", 1, {}),
        training.Row("q/other", 0, {}),
    ]
    best = training.best_per_group(rows, np.array([0.2, 0.7, 0.1]))
    assert best["q/own"] == (0.7, rows[1]) and best["q/other"] == (0.1, rows[2])


def test_first_choice_prefers_rows_that_pass_the_gates() -> None:
    rows = [
        training.Row("a", 1, {}),  # the best score, but gated
        training.Row("a", 0, {}),
        training.Row("a", 0, {}),  # ties with the row before: the first one wins
        training.Row("b", 1, {}),  # every row of b is gated: the best of them wins
        training.Row("b", 0, {}),
    ]
    scores = np.array([0.9, 0.4, 0.4, 0.3, 0.2])
    passes = np.array([False, True, True, False, False])
    chosen = training.first_choice(rows, scores, passes)
    assert chosen["a"] is rows[1] and chosen["b"] is rows[3]


def test_fold_of_is_the_sha256_of_the_key() -> None:
    # sha256("x") = 2d7116...4881 (sha256sum): odd, so fold 1 of 2; it is 0 mod 5.
    assert training.fold_of("x", 2) == 1
    assert training.fold_of("x", 5) == 0


def test_out_of_fold_scores_each_row_with_a_model_that_never_saw_it() -> None:
    x = np.array([[0.0], [1.0], [2.0], [3.0], [0.5], [2.5]])
    y = np.array([0, 0, 1, 1, 0, 1])
    fold = np.array([0, 0, 0, 1, 1, 1])
    scores = training.out_of_fold(x, y, fold, ("a",))
    for k in (0, 1):
        model = training.fit_logistic(x[fold != k], y[fold != k], ("a",))
        assert np.array_equal(scores[fold == k], model.probability(x[fold == k]))
    with pytest.raises(ValueError, match="only one label"):
        training.out_of_fold(x, np.array([0, 0, 0, 1, 1, 1]), np.array([0, 0, 0, 1, 1, 1]), ("a",))


def test_holds_answer_folds_case_quotes_and_spaces() -> None:
    assert training.holds_answer("The “Super  Bowl” was held.", ("super bowl",))
    assert not training.holds_answer("The Super Bowl was held.", ("World Cup",))


@dataclass
class Idf:
    """The slice of IndexView that coverage reads."""

    idf: dict[str, float]

    def term_idf(self, term: str) -> float:
        return self.idf.get(term, 0.0)

    def top_idf(self) -> float:
        return 4.0


def _question(terms: list[str]) -> Question:
    empty = np.zeros((0, 4), dtype=np.float32)
    return Question("q", np.zeros(4), empty, np.zeros(0, np.int64), terms, None, [])


def test_coverage_weighs_terms_by_idf_and_unknown_terms_highest() -> None:
    view = Idf({"iran": 1.0, "protest": 3.0})
    # "gazprom" is in no chunk: it weighs the top IDF, 4.
    terms = ["iran", "protest", "gazprom"]
    assert F.coverage(view, terms, frozenset({"protest"})) == pytest.approx(3 / 8)  # type: ignore[arg-type]
    assert F.coverage(view, [], frozenset({"protest"})) == 0.0  # type: ignore[arg-type]


def test_novelty_is_the_share_of_new_terms() -> None:
    assert F.novelty(_question(["iran", "oil"]), frozenset({"iran", "china", "buyer"})) == 2 / 3
    assert F.novelty(_question(["iran"]), frozenset()) == 0.0


def test_without_drops_gold_chunks_and_their_folded_copies() -> None:
    from rag.retriever import Hit

    hits = [Hit(1, 0.9, also_in=[7]), Hit(2, 0.8, also_in=[3]), Hit(4, 0.7), Hit(5, 0.6)]
    by_id = {h.chunk_id: h for h in hits} | {3: Hit(3, 0.5), 7: Hit(7, 0.4)}
    kept, left = training.without(hits, by_id, lambda cid: cid in {1, 3}, 2)
    # Chunk 1 is gone with its group; chunk 2 stays without its gold copy 3.
    assert [(h.chunk_id, h.also_in) for h in kept] == [(2, []), (4, [])]
    assert sorted(left) == [2, 4, 5, 7]
    # The ranking handed in is not changed.
    assert hits[1].also_in == [3]


def test_confidence_holds_at_thresholds_of_zero_and_one() -> None:
    model = LogisticModel(("sentence",), np.zeros(1), np.ones(1), np.ones(1), 0.0)
    for threshold in (0.0, 1.0):
        c = LearnedScorer(model, threshold).confidence(0.5)
        assert 0.0 < c < 1.0
