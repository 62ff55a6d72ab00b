"""Threshold fitting on hand-made scores: exact thresholds, the FPR target, Wilson intervals."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.evaluation.calibration import (
    Bounds,
    Confusion,
    f1_interval,
    fit_threshold,
    operating_point,
    proportion,
    triggers,
)
from workbench.evaluation.calibration_routes import fit_route_threshold, route_operating_point

# Negatives (benign) and positives (attacks) of a detector that triggers at score >= t.
BENIGN = [0.1, 0.2, 0.3, 0.4]
ATTACKS = [0.35, 0.5, 0.6, 0.9]
SCORES = np.array(BENIGN + ATTACKS)
POSITIVE = np.array([False] * 4 + [True] * 4)


@pytest.mark.parametrize(
    ("target", "expected", "counts"),
    [
        # No false positive allowed: everything above the top benign score (0.4), cut at the midpoint.
        (0.0, 0.45, {"tp": 3, "fp": 0, "tn": 4, "fn": 1}),
        # One in four allowed: 0.4 may fire, which buys 0.35; 0.3 would be a second.
        (0.25, 0.325, {"tp": 4, "fp": 1, "tn": 3, "fn": 0}),
        # 0.5 admits two, but catching everything needs only one: the fewer false positives win.
        (0.5, 0.325, {"tp": 4, "fp": 1, "tn": 3, "fn": 0}),
    ],
)
def test_fpr_objective_picks_the_exact_threshold(target, expected, counts):
    threshold = fit_threshold(SCORES, POSITIVE, polarity="above", objective="fpr", target_fpr=target)
    assert threshold == pytest.approx(expected)
    point = operating_point(SCORES, POSITIVE, threshold, "above")
    assert point.confusion.counts() == counts
    assert point.fpr.value <= target


def test_best_f1_and_the_below_polarity():
    # F1 at 0.325 is 8/9, at 0.45 6/7, at 0.25 8/10.
    assert fit_threshold(SCORES, POSITIVE, polarity="above", objective="f1") == pytest.approx(0.325)
    # A groundedness-like detector fires at score < t; its positives (ungrounded) score low.
    scores = np.array([0.6, 0.7, 0.8, 0.9, 0.1, 0.2, 0.65, 0.3])
    assert fit_threshold(scores, POSITIVE, polarity="below", target_fpr=0.0) == pytest.approx(0.45)
    assert fit_threshold(scores, POSITIVE, polarity="below", target_fpr=0.25) == pytest.approx(0.675)
    assert list(triggers(scores, 0.45, "below")) == [False] * 4 + [True, True, False, True]


def test_the_fpr_target_holds_on_the_fitted_data():
    rng = np.random.default_rng(3)
    benign = rng.beta(2, 5, 400)
    attacks = rng.beta(5, 2, 200)
    scores = np.concatenate([benign, attacks])
    positive = np.array([False] * 400 + [True] * 200)
    for target in (0.0, 0.01, 0.05, 0.2):
        bounds = Bounds(0, 1, False, False)
        threshold = fit_threshold(scores, positive, polarity="above", target_fpr=target, bounds=bounds)
        c = Confusion.of(triggers(scores, threshold, "above"), positive)
        assert c.fpr <= target
        # And no lower threshold catches more attacks within the target.
        for lower in scores[scores < threshold]:
            other = Confusion.of(triggers(scores, lower, "above"), positive)
            assert other.fpr > target or other.tp == c.tp


def test_a_threshold_is_clamped_into_the_configs_range():
    # Everything ties at 1.0: flagging nothing needs t > 1, which `attack` (0 < t < 1) forbids.
    scores, positive = np.array([1.0, 1.0, 0.2]), np.array([True, False, False])
    t = fit_threshold(scores, positive, polarity="above", target_fpr=0.0, bounds=Bounds(0, 1, False, False))
    assert 0.99 < t < 1.0


def test_wilson_interval_matches_the_textbook_value():
    # 5 of 10 at 95%: Wilson gives [0.2366, 0.7634] (Newcombe 1998, method 3).
    interval = proportion(5, 10)
    assert interval.value == 0.5
    assert interval.low == pytest.approx(0.2366, abs=1e-4) and interval.high == pytest.approx(0.7634, abs=1e-4)
    # 0 of 20 is not [0, 0]: the upper bound says how little 20 negatives guarantee.
    assert proportion(0, 20).high == pytest.approx(0.1611, abs=1e-4)


def test_f1_interval_brackets_the_estimate_and_is_seeded():
    fired = triggers(SCORES, 0.325, "above")
    a, b = f1_interval(fired, POSITIVE, seed=1), f1_interval(fired, POSITIVE, seed=1)
    assert a == b and a.value == pytest.approx(8 / 9)
    assert 0 <= a.low <= a.value <= a.high <= 1 and a.low < a.high


BEST = ["structured", "structured", "structured", "structured", "structured", "general", "structured"]
ROUTE_SCORES = np.array([0.9, 0.8, 0.5, 0.3, 0.2, 0.6, 0.55])
LABELS = ["structured", "structured", "structured", "general", "general", "general", "general"]


def test_router_threshold_for_accuracy_and_for_a_target_rate():
    fit = fit_route_threshold(BEST, ROUTE_SCORES, LABELS, default="general", objective="accuracy")
    assert fit == pytest.approx(0.4)  # 6/7 first reached between 0.3 and 0.5
    point = route_operating_point(BEST, ROUTE_SCORES, LABELS, default="general", threshold=fit)
    assert point.accuracy.value == pytest.approx(6 / 7)
    # In-scope (structured) questions sent to general: none allowed, then one of three.
    strict = fit_route_threshold(BEST, ROUTE_SCORES, LABELS, default="general", objective="target", target_rate=0.0)
    assert strict == pytest.approx(0.4)
    loose = fit_route_threshold(BEST, ROUTE_SCORES, LABELS, default="general", objective="target", target_rate=1 / 3)
    assert loose == pytest.approx(0.7)
    lost = route_operating_point(BEST, ROUTE_SCORES, LABELS, default="general", threshold=loose)
    assert lost.binary.confusion.fp == 1 and lost.binary.fpr.value == pytest.approx(1 / 3)


def test_conservative_holds_the_upper_bound_to_the_target():
    # A 50% target admits one benign of four (0.325); its Wilson upper bound (0.81 for 1 of 4)
    # does not, while 0 of 4 (upper bound 0.49) does.
    assert fit_threshold(SCORES, POSITIVE, polarity="above", target_fpr=0.5) == pytest.approx(0.325)
    assert fit_threshold(SCORES, POSITIVE, polarity="above", target_fpr=0.5, conservative=True) == pytest.approx(0.45)
    assert proportion(0, 4).high == pytest.approx(0.4899, abs=1e-4)
    # No cut can meet 1% with four negatives: the fewest false positives (none flagged here).
    t = fit_threshold(SCORES, POSITIVE, polarity="above", target_fpr=0.01, conservative=True)
    assert Confusion.of(triggers(SCORES, t, "above"), POSITIVE).fp == 0


def test_vectorised_wilson_upper_bound_matches_the_scalar_one():
    from workbench.evaluation._intervals import wilson
    from workbench.evaluation.calibration import wilson_upper

    counts = np.array([0, 1, 5, 37, 100])
    expected = [wilson(int(k), 100, 0.95)[1] for k in counts]
    assert wilson_upper(counts, 100) == pytest.approx(expected, abs=1e-12)


def test_out_of_bag_estimates_the_unseen_fpr_of_the_fitting_procedure():
    from workbench.evaluation.calibration import out_of_bag

    rng = np.random.default_rng(5)
    benign, attacks = rng.beta(2, 5, 600), rng.beta(5, 2, 300)
    scores = np.concatenate([benign, attacks])
    positive = np.array([False] * 600 + [True] * 300)

    def fit(s, p):
        return fit_threshold(s, p, polarity="above", target_fpr=0.05)

    oob = out_of_bag(scores, positive, fit, "above", resamples=100, seed=1)
    assert oob["fpr"].low <= oob["fpr"].value <= oob["fpr"].high
    # Fitted to 5%, the threshold's FPR on fresh draws from the same distributions is about 5%.
    fresh_benign = rng.beta(2, 5, 20000)
    threshold = fit(scores, positive)
    fresh_fpr = float(np.mean(fresh_benign >= threshold))
    assert oob["fpr"].low <= fresh_fpr <= oob["fpr"].high
    assert 0.02 < oob["fpr"].value < 0.09
    assert oob == out_of_bag(scores, positive, fit, "above", resamples=100, seed=1)  # seeded
