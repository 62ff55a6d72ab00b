"""Fit a detector's threshold from labelled scores, and report it with confidence intervals.

A detector triggers at `score >= threshold` (polarity "above", e.g. an attack probability) or
at `score < threshold` ("below", e.g. groundedness support). Every distinct score is a possible
cut; the threshold placed at a cut is the midpoint between the scores either side of it, so a
score seen in the fit never sits on the threshold itself. Two objectives:

- `fpr`: the cut that catches the most positives while the false-positive rate on the
  negatives stays <= the target (of those, the one with the fewest false positives); with
  `conservative`, the rate's 95% upper bound must stay <= the target;
- `f1`: the cut with the best F1 (ties: the fewest false positives).

The figures reported at a threshold are always recounted with the detector's own trigger rule
at the threshold finally written (after clamping it into the config's allowed range), so they
describe the value that ships. Proportions get Wilson intervals; F1 a percentile bootstrap over
examples. Figures on the examples the threshold was fitted on are optimistic (the threshold was
chosen on them): pass held-out examples for an honest estimate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from workbench.evaluation._intervals import wilson

Polarity = Literal["above", "below"]
Objective = Literal["fpr", "f1"]
CONFIDENCE = 0.95


def triggers(scores: np.ndarray, threshold: float, polarity: Polarity) -> np.ndarray:
    """Which scores trigger at `threshold`: the detectors' own rule."""
    scores = np.asarray(scores, dtype=float)
    return scores >= threshold if polarity == "above" else scores < threshold


def _ratio(num: int, den: int) -> float:
    return num / den if den else math.nan


@dataclass(frozen=True)
class Confusion:
    """Counts of one detector against labels: positives that triggered are true positives."""

    tp: int
    fp: int
    tn: int
    fn: int

    @classmethod
    def of(cls, triggered: ArrayLike, positive: ArrayLike) -> Confusion:
        t, p = np.asarray(triggered, dtype=bool), np.asarray(positive, dtype=bool)
        return cls(int(np.sum(t & p)), int(np.sum(t & ~p)), int(np.sum(~t & ~p)), int(np.sum(~t & p)))

    @property
    def positives(self) -> int:
        return self.tp + self.fn

    @property
    def negatives(self) -> int:
        return self.fp + self.tn

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.positives)

    @property
    def fpr(self) -> float:
        return _ratio(self.fp, self.negatives)

    @property
    def f1(self) -> float:
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    def counts(self) -> dict[str, int]:
        return {"tp": self.tp, "fp": self.fp, "tn": self.tn, "fn": self.fn}


@dataclass(frozen=True)
class Bounds:
    """The range a config allows for a threshold, e.g. (0, 1) exclusive for `attack`."""

    low: float = -math.inf
    high: float = math.inf
    low_inclusive: bool = True
    high_inclusive: bool = True

    def clamp(self, value: float) -> float:
        low = self.low if self.low_inclusive else float(np.nextafter(self.low, math.inf))
        high = self.high if self.high_inclusive else float(np.nextafter(self.high, -math.inf))
        return min(max(value, low), high)


UNBOUNDED = Bounds()


def wilson_upper(successes: np.ndarray, n: int, confidence: float = CONFIDENCE) -> np.ndarray:
    """The upper Wilson bound of `successes` out of `n`, for an array of counts at once (the
    same formula as `_intervals.wilson`, which a test checks)."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = np.asarray(successes, dtype=float) / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return np.where(p >= 1, 1.0, np.minimum(1.0, centre + half))


def _cuts(scores: np.ndarray, positive: np.ndarray, polarity: Polarity) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(threshold, TP, FP) at every cut between distinct scores, in increasing threshold order."""
    values, inverse = np.unique(scores, return_inverse=True)
    pos = np.bincount(inverse, weights=positive.astype(float), minlength=len(values))
    neg = np.bincount(inverse, weights=(~positive).astype(float), minlength=len(values))
    above_top = float(np.nextafter(values[-1], math.inf))
    # thresholds[k] sits just below values[k]: values[0], midpoints, then just above the top.
    thresholds = np.concatenate([[values[0]], (values[:-1] + values[1:]) / 2, [above_top]])
    if polarity == "above":  # values[k:] trigger at thresholds[k]
        tp = np.concatenate([np.cumsum(pos[::-1])[::-1], [0.0]])
        fp = np.concatenate([np.cumsum(neg[::-1])[::-1], [0.0]])
    else:  # values[:k] trigger at thresholds[k]
        tp = np.concatenate([[0.0], np.cumsum(pos)])
        fp = np.concatenate([[0.0], np.cumsum(neg)])
    return thresholds, tp, fp


def fit_threshold(
    scores: np.ndarray,
    positive: np.ndarray,
    *,
    polarity: Polarity,
    objective: Objective = "fpr",
    target_fpr: float = 0.01,
    bounds: Bounds = UNBOUNDED,
    conservative: bool = False,
) -> float:
    """The threshold the objective picks (see the module docstring), clamped into `bounds`.

    `conservative` holds the FPR's 95% Wilson upper bound, not its estimate, to the target: a
    threshold fitted to the estimate exceeds the target on new data about half the time.
    Needs at least one positive and one negative example.
    """
    scores = np.asarray(scores, dtype=float)
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("fitting a threshold needs positive and negative examples")
    thresholds, tp, fp = _cuts(scores, positive, polarity)
    if objective == "fpr":
        # A tiny tolerance so that a target equal to k/n admits k false positives.
        rate = wilson_upper(fp, n_neg) if conservative else fp / n_neg
        feasible = rate <= target_fpr + 1e-12
        # Most TP among the feasible cuts, then fewest FP; lexsort's last key is the primary one.
        # Nothing feasible (conservative, with too few negatives for any cut's bound to reach the
        # target): the cuts with the fewest false positives; the caller warns.
        candidates = np.flatnonzero(feasible) if feasible.any() else np.flatnonzero(fp == fp.min())
        order = np.lexsort((fp[candidates], -tp[candidates]))
        best = int(candidates[order[0]])
    else:
        f1 = 2 * tp / np.maximum(2 * tp + fp + (n_pos - tp), 1)
        best = int(np.lexsort((fp, -f1))[0])
    return bounds.clamp(float(thresholds[best]))


@dataclass(frozen=True)
class Interval:
    """An estimate with its 95% interval; NaN when undefined (e.g. precision with nothing flagged)."""

    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float | None]:
        return {k: (None if math.isnan(v) else round(v, 6)) for k, v in vars(self).items()}


def proportion(successes: int, n: int, confidence: float = CONFIDENCE) -> Interval:
    low, high = wilson(successes, n, confidence)
    return Interval(_ratio(successes, n), low, high)


def f1_interval(
    triggered: np.ndarray,
    positive: np.ndarray,
    *,
    resamples: int = 2000,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> Interval:
    """F1 at a fixed threshold, with a percentile bootstrap over examples."""
    t, p = np.asarray(triggered, dtype=bool), np.asarray(positive, dtype=bool)
    estimate = Confusion.of(t, p).f1
    if len(t) == 0:
        return Interval(math.nan, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    tp_flags, fp_flags, fn_flags = t & p, t & ~p, ~t & p
    replicates = np.empty(resamples)
    for start in range(0, resamples, 200):  # a few hundred resamples at a time keeps memory flat
        idx = rng.integers(0, len(t), size=(min(200, resamples - start), len(t)))
        tp = tp_flags[idx].sum(axis=1)
        denominator = 2 * tp + fp_flags[idx].sum(axis=1) + fn_flags[idx].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            replicates[start : start + len(idx)] = np.where(denominator > 0, 2 * tp / denominator, np.nan)
    replicates = replicates[~np.isnan(replicates)]
    if not len(replicates):
        return Interval(estimate, math.nan, math.nan)
    alpha = 1 - confidence
    low, high = np.quantile(replicates, [alpha / 2, 1 - alpha / 2])
    return Interval(estimate, float(low), float(high))


@dataclass(frozen=True)
class Operating:
    """How a detector does at one threshold on one set of labelled examples."""

    threshold: float
    confusion: Confusion
    precision: Interval
    recall: Interval
    fpr: Interval
    f1: Interval

    @classmethod
    def of(cls, threshold: float, fired: ArrayLike, positive: ArrayLike, *, seed: int = 0) -> Operating:
        """The figures of a detector that `fired` on examples labelled `positive`."""
        fired, positive = np.asarray(fired, dtype=bool), np.asarray(positive, dtype=bool)
        c = Confusion.of(fired, positive)
        return cls(
            threshold=threshold,
            confusion=c,
            precision=proportion(c.tp, c.tp + c.fp),
            recall=proportion(c.tp, c.positives),
            fpr=proportion(c.fp, c.negatives),
            f1=f1_interval(fired, positive, seed=seed),
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "threshold": self.threshold,
            **self.confusion.counts(),
            "precision": self.precision.as_dict(),
            "recall": self.recall.as_dict(),
            "fpr": self.fpr.as_dict(),
            "f1": self.f1.as_dict(),
        }


def operating_point(
    scores: np.ndarray, positive: np.ndarray, threshold: float, polarity: Polarity, *, seed: int = 0
) -> Operating:
    """Counts, precision, recall, FPR and F1 with 95% intervals at `threshold`."""
    return Operating.of(threshold, triggers(scores, threshold, polarity), positive, seed=seed)


def out_of_bag(
    scores: np.ndarray,
    positive: np.ndarray,
    fit: Callable[[np.ndarray, np.ndarray], float],
    polarity: Polarity,
    *,
    resamples: int = 200,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> dict[str, Interval]:
    """What the fitting procedure gives on examples it did not see: refit on each bootstrap
    resample, count FPR and recall on the examples left out of it. The median and percentile
    interval over resamples estimate the new threshold's FPR and recall on unseen data drawn like
    these examples, selection included (the figures at the fitted threshold are optimistic)."""
    scores, positive = np.asarray(scores, dtype=float), np.asarray(positive, dtype=bool)
    rng = np.random.default_rng(seed)
    fpr, recall = [], []
    for _ in range(resamples):
        idx = rng.integers(0, len(scores), size=len(scores))
        left_out = np.ones(len(scores), dtype=bool)
        left_out[idx] = False
        sample = positive[idx]
        if sample.all() or not sample.any() or positive[left_out].all() or not positive[left_out].any():
            continue  # a resample, or what it leaves out, without both classes says nothing
        threshold = fit(scores[idx], sample)
        c = Confusion.of(triggers(scores[left_out], threshold, polarity), positive[left_out])
        fpr.append(c.fpr)
        recall.append(c.recall)
    alpha = 1 - confidence

    def summary(values: list[float]) -> Interval:
        if not values:
            return Interval(math.nan, math.nan, math.nan)
        low, mid, high = np.quantile(values, [alpha / 2, 0.5, 1 - alpha / 2])
        return Interval(float(mid), float(low), float(high))

    return {"fpr": summary(fpr), "recall": summary(recall)}
