"""Sentence scorers: from a candidate's features (rag/answering/features.py) to a score
that ranks the candidates, and the evidence that decides whether to answer at all.

- "hand": a weighted sum with weights taken from `AnswererConfig.weights` by feature
  name (chosen by cross-validation on the seeds set's development half); evidence is the
  `evidence` feature, null below `min_score`.
- "learned": a logistic regression over the features, fitted by
  `scripts/train_answerer.py` on SQuAD v1.1 dev (half of its articles) and shipped as
  `rag/answering/weights.json`; the score is the probability that the sentence holds the
  answer, null below `min_probability`.

Both give a confidence that is exactly 0.5 at their threshold.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

from rag.answering.features import FEATURES, vector
from rag.config import AnswererConfig

WEIGHTS_FILE = Path(__file__).with_name("weights.json")
SCORERS = ("hand", "learned")


class Scorer(Protocol):
    @property
    def uses(self) -> tuple[str, ...]:
        """The features the score reads."""
        ...

    def score(self, values: dict[str, float]) -> float:
        """Ranks the candidates of one question: higher is better."""
        ...

    def evidence(self, values: dict[str, float]) -> float:
        """How strongly the chosen candidate answers the question."""
        ...

    def confidence(self, evidence: float) -> float:
        """Evidence mapped to (0, 1), 0.5 exactly at the threshold."""
        ...

    @property
    def threshold(self) -> float: ...


@dataclass(frozen=True)
class HandScorer:
    weights: dict[str, float]
    min_score: float
    slope: float

    @property
    def uses(self) -> tuple[str, ...]:
        """The features that weigh in the score."""
        return tuple(n for n, w in self.weights.items() if w)

    def score(self, values: dict[str, float]) -> float:
        return sum(w * values[name] for name, w in self.weights.items())

    def evidence(self, values: dict[str, float]) -> float:
        return values["evidence"]

    def confidence(self, evidence: float) -> float:
        return 1.0 / (1.0 + math.exp(-self.slope * (evidence - self.min_score)))

    @property
    def threshold(self) -> float:
        return self.min_score


@dataclass(frozen=True)
class LogisticModel:
    """A fitted logistic regression over standardised features."""

    names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def probability(self, x: np.ndarray) -> np.ndarray:
        z = ((x - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def to_dict(self) -> dict:
        def r(a: np.ndarray) -> list[float]:
            return [round(float(v), 6) for v in a]

        return {
            "features": list(self.names),
            "mean": r(self.mean),
            "scale": r(self.scale),
            "coef": r(self.coef),
            "intercept": round(float(self.intercept), 6),
        }

    @classmethod
    def from_dict(cls, data: dict) -> LogisticModel:
        return cls(
            tuple(data["features"]),
            np.asarray(data["mean"], dtype=np.float64),
            np.asarray(data["scale"], dtype=np.float64),
            np.asarray(data["coef"], dtype=np.float64),
            float(data["intercept"]),
        )


@lru_cache(maxsize=4)
def load_model(path: str) -> tuple[LogisticModel, float]:
    """The model in a weights file and the abstention threshold trained beside it."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return LogisticModel.from_dict(data["model"]), float(data["min_probability"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"cannot read the answer model {path} ({exc}); re-create it with "
            "`python scripts/train_answerer.py`"
        ) from None


@dataclass(frozen=True)
class LearnedScorer:
    model: LogisticModel
    min_probability: float
    off: tuple[str, ...] = ()

    @property
    def uses(self) -> tuple[str, ...]:
        return self.model.names

    def score(self, values: dict[str, float]) -> float:
        x = vector(values, self.model.names)
        for i, name in enumerate(self.model.names):
            if name in self.off:
                x[i] = self.model.mean[i]
        return float(self.model.probability(x[None, :])[0])

    def evidence(self, values: dict[str, float]) -> float:
        return self.score(values)

    def confidence(self, evidence: float) -> float:
        # The probability's log-odds shifted so that the threshold maps to 0.5.
        p = min(max(evidence, 1e-9), 1 - 1e-9)
        t = min(max(self.min_probability, 1e-9), 1 - 1e-9)  # a threshold of 0 or 1 too
        shift = math.log(p / (1 - p)) - math.log(t / (1 - t))
        return 1.0 / (1.0 + math.exp(-shift))

    @property
    def threshold(self) -> float:
        return self.min_probability


def make_scorer(config: AnswererConfig) -> Scorer:
    unknown = sorted((set(config.weights) | set(config.off)) - set(FEATURES))
    if unknown:
        raise ValueError(f"unknown answer features {unknown}; valid choices: {list(FEATURES)}")
    if config.scorer == "hand":
        weights = {n: w for n, w in config.weights.items() if n not in config.off}
        return HandScorer(weights, config.min_score, config.confidence_slope)
    if config.scorer == "learned":
        model, threshold = load_model(config.model_file or str(WEIGHTS_FILE))
        if config.min_probability is not None:
            threshold = config.min_probability
        return LearnedScorer(model, threshold, tuple(config.off))
    raise ValueError(f"unknown answer scorer {config.scorer!r}; valid choices: {list(SCORERS)}")
