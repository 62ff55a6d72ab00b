"""Fit a semantic router's threshold: below it a question goes to the default route.

Each labelled question has the router's best route and best score (max cosine to that route's
utterances). At threshold t the router sends it to the best route when score >= t, else to the
default. Two objectives:

- `accuracy`: the t with the highest route accuracy (ties: the lowest t, so the fewest
  questions are sent to the default);
- `target`: the highest t at which the share of in-scope questions (labelled with a route other
  than the default) wrongly sent to the default stays <= the target rate; a higher t catches
  more out-of-scope questions, so this is the most cautious router within the budget.

As with guard thresholds, candidate thresholds are midpoints between distinct best scores, and
the figures are recounted at the threshold finally written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from workbench.evaluation.calibration import Bounds, Interval, Operating, proportion

RouteObjective = Literal["accuracy", "target"]
# A cosine similarity, as `routing.threshold` allows.
SIMILARITY = Bounds(-1.0, 1.0)


def predicted_routes(best: list[str], scores: np.ndarray, default: str, threshold: float) -> np.ndarray:
    """The router's rule: the best route at `score >= threshold`, else the default."""
    return np.where(np.asarray(scores, dtype=float) >= threshold, np.asarray(best, dtype=object), default)


def _candidates(scores: np.ndarray) -> np.ndarray:
    values = np.unique(scores)
    return np.concatenate([[values[0]], (values[:-1] + values[1:]) / 2, [np.nextafter(values[-1], math.inf)]])


def fit_route_threshold(
    best: list[str],
    scores: np.ndarray,
    labels: list[str],
    *,
    default: str,
    objective: RouteObjective = "accuracy",
    target_rate: float = 0.05,
    bounds: Bounds = SIMILARITY,
) -> float:
    """The threshold the objective picks, clamped into `bounds`."""
    scores = np.asarray(scores, dtype=float)
    truth = np.asarray(labels, dtype=object)
    thresholds = _candidates(scores)
    # One row per candidate threshold: where each question goes.
    routed = np.where(scores[None, :] >= thresholds[:, None], np.asarray(best, dtype=object)[None, :], default)
    accuracy = (routed == truth[None, :]).mean(axis=1)
    if objective == "accuracy":
        pick = int(np.argmax(accuracy))  # argmax returns the first, i.e. the lowest threshold
    else:
        in_scope = truth != default
        if not in_scope.any():
            raise ValueError("a target rate of in-scope questions sent to the default needs in-scope questions")
        lost = ((routed == default) & in_scope[None, :]).sum(axis=1) / in_scope.sum()
        feasible = np.flatnonzero(lost <= target_rate + 1e-12)
        # The rate only grows with t. None feasible: questions whose best route is the default
        # are lost at any t; the lowest t loses the fewest, and the report shows the miss.
        pick = int(feasible[-1]) if len(feasible) else 0
    return bounds.clamp(float(thresholds[pick]))


@dataclass(frozen=True)
class RouteOperating:
    """How the router does at one threshold: route accuracy, and a binary view in which "sent to
    the default" is the detector and "labelled with the default" the positive class, so FPR is
    the share of in-scope questions wrongly sent to the default and recall the share of
    default-labelled (out-of-scope) questions caught."""

    accuracy: Interval
    binary: Operating

    @property
    def threshold(self) -> float:
        return self.binary.threshold

    def as_dict(self) -> dict[str, object]:
        return {"accuracy": self.accuracy.as_dict(), **self.binary.as_dict()}


def route_operating_point(
    best: list[str], scores: np.ndarray, labels: list[str], *, default: str, threshold: float, seed: int = 0
) -> RouteOperating:
    routed = predicted_routes(best, scores, default, threshold)
    truth = np.asarray(labels, dtype=object)
    return RouteOperating(
        accuracy=proportion(int(np.sum(routed == truth)), len(truth)),
        binary=Operating.of(threshold, routed == default, truth == default, seed=seed),
    )
