"""Calibrating reader scores into "answer or abstain" (shared by the extractive and FiD readers).

A reader's raw score (relevance x span probability, or a sequence probability) is not a
probability of being right. On held-out questions we fit Platt scaling, P(correct) =
sigmoid(a * log(score) + b), and abstain when that falls below a target (default 0.5: answer only
when more likely right than wrong). The fitted numbers go into the artifact's ``kira.json``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass


@dataclass
class NoAnswerCalibration:
    a: float
    b: float
    target: float
    threshold: float  # raw score at which P(correct) == target
    n: int
    accuracy_answered: float  # accuracy on held-out among questions the threshold lets through
    coverage: float  # fraction of held-out questions answered

    def prob_correct(self, score: float) -> float:
        z = self.a * math.log(max(score, 1e-12)) + self.b
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> NoAnswerCalibration | None:
        return cls(**d) if d else None


def fit_no_answer(scores: Sequence[float], correct: Sequence[bool], target: float = 0.5,
                  steps: int = 2000, lr: float = 0.5) -> NoAnswerCalibration:
    """Platt-scale ``log(score)`` against correctness by gradient descent (1-D logistic regression)."""
    if len(scores) != len(correct) or not scores:
        raise ValueError("fit_no_answer needs equally many (>0) scores and correctness labels")
    xs = [math.log(max(s, 1e-12)) for s in scores]
    ys = [1.0 if c else 0.0 for c in correct]
    mu = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - mu) ** 2 for x in xs) / len(xs)) or 1.0
    zs = [(x - mu) / sd for x in xs]
    w, c = 0.0, 0.0
    n = len(zs)
    for _ in range(steps):
        gw = gc = 0.0
        for z, y in zip(zs, ys, strict=True):
            p = 1.0 / (1.0 + math.exp(-max(min(w * z + c, 50.0), -50.0)))
            gw += (p - y) * z
            gc += p - y
        w -= lr * (gw / n + 1e-3 * w)
        c -= lr * gc / n
    a, b = w / sd, c - w * mu / sd
    logit_t = math.log(target / (1 - target))
    threshold = math.exp((logit_t - b) / a) if abs(a) > 1e-9 else (0.0 if b >= logit_t else float("inf"))
    threshold = min(max(threshold, 0.0), 1e6)
    answered = [y for s, y in zip(scores, ys, strict=True) if s >= threshold]
    return NoAnswerCalibration(a=a, b=b, target=target, threshold=threshold, n=n,
                               accuracy_answered=(sum(answered) / len(answered)) if answered else 0.0,
                               coverage=len(answered) / n)


def save_calibration(artifact_dir: str | os.PathLike, calibration: NoAnswerCalibration | None,
                     how: dict | None = None) -> None:
    """Store ``calibration`` in a reader artifact's ``kira.json`` (``no_answer``; ``how`` says what
    it was fitted on)."""
    from kira.artifacts import update_config

    changes: dict = {"no_answer": calibration.to_dict() if calibration else None}
    if how is not None:
        changes["no_answer_fitted_on"] = how
    update_config(artifact_dir, changes)
