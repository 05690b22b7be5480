"""Training data and fitting for the learned answer scorer (rag/answering/scorer.py).

`scripts/train_answerer.py` drives it on SQuAD v1.1 dev:
- articles are split in two halves by their position in the file (even: train, odd:
  held out), never by question, and each half gets its own index;
- every sampled question is asked three times: against its half's index (its sentences
  are positives when they hold a gold answer in the gold paragraph, negatives
  otherwise), against the same index with its own article left out (`sources`), where
  every sentence is a negative: that is what a corpus without the answer looks like,
  and of its own article with its gold paragraphs taken out (`without`): the same topic
  and names, no answer, as a near-topic question;
- a logistic regression with an L2 penalty is fitted by Newton's method on standardised
  features: no randomness, so the same data gives the same weights.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from rag.answering.scorer import LogisticModel
from rag.retriever import Hit
from rag.text import normalise


@dataclass(frozen=True)
class Row:
    """One candidate sentence of one question asked in one way."""

    group: str  # question id and pass ("own" or "other")
    label: int  # 1 when the sentence holds a gold answer in a gold paragraph
    values: dict[str, float]


def holds_answer(sentence: str, answers: tuple[str, ...]) -> bool:
    """Whether a sentence contains one of the gold answer texts (case, quotes, dashes and
    whitespace folded)."""
    text = normalise(sentence)
    return any(normalise(a) in text for a in answers)


def fit_logistic(
    x: np.ndarray, y: np.ndarray, names: tuple[str, ...], l2: float = 1.0, iterations: int = 50
) -> LogisticModel:
    """Logistic regression by Newton's method (IRLS) on standardised columns, with an L2
    penalty `l2` on the coefficients (not the intercept). Deterministic."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(z @ w)))
        gradient = z.T @ (p - y) + penalty * w
        hessian = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return LogisticModel(names, mean, scale, w[:-1], float(w[-1]))


def matrix(rows: list[Row], names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray([[r.values[n] for n in names] for r in rows], dtype=np.float64)
    y = np.asarray([r.label for r in rows], dtype=np.int64)
    return x, y


def best_per_group(rows: list[Row], scores: np.ndarray) -> dict[str, tuple[float, Row]]:
    """The top-scoring row of each group (the first on a tie, as the answerer does)."""
    best: dict[str, tuple[float, Row]] = {}
    for row, score in zip(rows, scores, strict=True):
        if row.group not in best or score > best[row.group][0]:
            best[row.group] = (float(score), row)
    return best


def threshold_keeping(scores: list[float], share: float, decimals: int = 6) -> float:
    """The highest threshold, written with `decimals` decimals, under which at most
    1 - `share` of `scores` fall. Rounded down, never to the nearest: a threshold rounded
    up past the lowest score it keeps would drop that score too."""
    ordered = sorted(scores)
    drop = int(np.floor(len(ordered) * (1 - share) + 1e-9))
    if not ordered:
        return 0.0
    return math.floor(ordered[drop] * 10**decimals) / 10**decimals


def without(
    hits: list[Hit], by_id: dict[int, Hit], drop: Callable[[int], bool], k: int
) -> tuple[list[Hit], dict[int, Hit]]:
    """The ranking with the chunks `drop` names taken out, folded duplicates included:
    the top `k` of what is left, and the scored candidates left. A question asked this
    way of its own article, its gold paragraphs dropped, is a near-topic negative."""
    kept = [
        replace(h, also_in=[c for c in h.also_in if not drop(c)])
        for h in hits
        if not drop(h.chunk_id)
    ]
    return kept[:k], {cid: h for cid, h in by_id.items() if not drop(cid)}


def first_choice(rows: list[Row], scores: np.ndarray, passes: np.ndarray) -> dict[str, Row]:
    """Per group, the row the answerer ranks first on `scores`: the best of the rows that
    pass the gates (`passes`), or of all of them when none passes; the first on a tie."""
    best: dict[str, tuple[tuple[bool, float], Row]] = {}
    for row, score, ok in zip(rows, scores, passes, strict=True):
        key = (bool(ok), float(score))
        if row.group not in best or key > best[row.group][0]:
            best[row.group] = (key, row)
    return {group: row for group, (_, row) in best.items()}


def fold_of(key: str, folds: int) -> int:
    """A fixed fold for `key` (the sha256 of its text): the same in every run."""
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest(), 16) % folds


def out_of_fold(
    x: np.ndarray, y: np.ndarray, fold: np.ndarray, names: tuple[str, ...], l2: float = 1.0
) -> np.ndarray:
    """Each row's probability from a model fitted on the rows of the other folds only,
    so that no row is scored by a model that saw its label."""
    scores = np.zeros(len(y), dtype=np.float64)
    for k in np.unique(fold):
        test = fold == k
        if len(np.unique(y[~test])) < 2:
            raise ValueError(f"fold {k}: the other folds hold only one label; use fewer folds")
        model = fit_logistic(x[~test], y[~test], names, l2=l2)
        scores[test] = model.probability(x[test])
    return scores
