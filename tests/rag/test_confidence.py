"""The README's promise about `confidence`: it is exactly 0.5 at the threshold below
which the answer is null, for every scorer as configured (not only for hand-built
ones), and it rises with the evidence. No model, no index."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rag.answering.scorer import SCORERS, make_scorer
from rag.config import AnswererConfig


@pytest.mark.parametrize("name", SCORERS)
def test_confidence_is_one_half_exactly_at_the_configured_threshold(name: str) -> None:
    scorer = make_scorer(replace(AnswererConfig(), scorer=name))
    t = scorer.threshold
    assert scorer.confidence(t) == 0.5
    below, above = float(np.nextafter(t, -np.inf)), float(np.nextafter(t, np.inf))
    assert scorer.confidence(below) <= 0.5 <= scorer.confidence(above)
    # Rounded as the API reports it (4 decimals), well inside the two sides.
    assert round(scorer.confidence(t - 0.01), 4) < 0.5 < round(scorer.confidence(t + 0.01), 4)


def test_hand_scorer_threshold_is_min_score() -> None:
    config = replace(AnswererConfig(), scorer="hand")
    assert make_scorer(config).threshold == config.min_score
    assert make_scorer(replace(config, min_score=0.3)).confidence(0.3) == 0.5


def test_the_default_scorer_is_one_of_the_scorers() -> None:
    assert AnswererConfig().scorer in SCORERS
