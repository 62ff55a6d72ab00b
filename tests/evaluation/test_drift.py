"""The drift statistics on synthetic samples with fixed seeds: the same distribution mostly
passes, a shifted one is caught, and the multiple-test correction holds."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.evaluation.drift import DriftTest, distribution_test, flag, holm, mmd_test, share_test


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_mmd_on_one_distribution_rarely_rejects() -> None:
    rng = np.random.default_rng(7)
    p_values = [
        mmd_test(_unit(rng.normal(size=(60, 8))), _unit(rng.normal(size=(60, 8))), permutations=200, seed=s).p_value
        for s in range(20)
    ]
    # At alpha 0.05, 1 rejection in 20 is expected; 4 or more happens with probability < 2%.
    assert sum(p < 0.05 for p in p_values) <= 3
    assert float(np.median(p_values)) > 0.2


def test_mmd_catches_a_shift_and_is_deterministic() -> None:
    rng = np.random.default_rng(3)
    x = _unit(rng.normal(size=(80, 8)))
    y = _unit(rng.normal(size=(80, 8)) + np.array([1.0] + [0.0] * 7))
    first = mmd_test(x, y, permutations=300, seed=1)
    assert first.p_value == pytest.approx(1 / 301)  # no permutation reaches the observed MMD²
    assert first.effect > 0 and first.kind == "embeddings" and len(first.detail["null"]) == 300
    again = mmd_test(x, y, permutations=300, seed=1)
    assert (again.statistic, again.p_value, again.detail["bandwidth"]) == (
        first.statistic,
        first.p_value,
        first.detail["bandwidth"],
    )


def test_mmd_caps_each_side_and_checks_shapes() -> None:
    rng = np.random.default_rng(0)
    capped = mmd_test(rng.normal(size=(300, 4)), rng.normal(size=(50, 4)), permutations=10, max_samples=100)
    assert (capped.n_reference, capped.n_current) == (100, 50)
    with pytest.raises(ValueError, match="dim"):
        mmd_test(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="2 rows"):
        mmd_test(np.zeros((1, 3)), np.zeros((5, 3)))


def test_share_test_two_categories_three_categories_and_one() -> None:
    moved = share_test([True] * 10 + [False] * 90, [True] * 40 + [False] * 60, name="guard.attack")
    assert moved.method == "fisher_exact" and moved.p_value < 1e-5
    assert moved.effect == pytest.approx(0.30)
    assert moved.detail["current"] == {"False": 0.6, "True": 0.4}
    routes = share_test(
        ["docs"] * 50 + ["chat"] * 30 + ["tool"] * 20, ["docs"] * 50 + ["chat"] * 30 + ["tool"] * 20, name="route"
    )
    assert routes.method == "chi2_homogeneity" and routes.p_value == pytest.approx(1.0)
    assert routes.effect == pytest.approx(0.0)
    single = share_test(["docs"] * 5, ["docs"] * 7, name="route")
    assert single.p_value == 1.0 and single.effect == 0.0
    with pytest.raises(ValueError, match="route"):
        share_test([], ["docs"], name="route")


def test_distribution_test_reports_ks_and_a_bootstrap_ci() -> None:
    rng = np.random.default_rng(11)
    base = rng.normal(1.0, 0.2, size=200)
    slower = distribution_test(base, rng.normal(1.3, 0.2, size=200), name="metric.latency_s", seed=2)
    low, high = slower.detail["mean_difference_ci"]
    assert slower.p_value < 1e-6 and 0.2 < low < 0.3 < high < 0.4
    same = distribution_test(base, rng.normal(1.0, 0.2, size=200), name="metric.latency_s")
    low, high = same.detail["mean_difference_ci"]
    assert same.p_value > 0.01 and low < 0 < high
    with_nan = distribution_test([1.0, np.nan, 2.0, 3.0], [1.0, 2.0, np.inf], name="m")
    assert (with_nan.n_reference, with_nan.n_current) == (3, 2)
    with pytest.raises(ValueError, match="2 values"):
        distribution_test([1.0], [1.0, 2.0], name="m")


def test_holm_adjustment_and_flagging() -> None:
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])

    def test(name: str, p: float, effect: float) -> DriftTest:
        return DriftTest(name, "metric", "ks_2samp", effect, p, effect, 100, 100)

    tests = [test("a", 0.001, 0.3), test("b", 0.02, 0.5), test("c", 0.0001, 0.01)]
    assert flag(tests, alpha=0.05)
    # b alone would pass at 0.05; Holm makes it 0.02 * 1 after the two smaller ones: still flagged.
    assert [t.flagged for t in tests] == [True, True, True]
    assert flag(tests, alpha=0.05, min_effect=0.1)
    assert [t.flagged for t in tests] == [True, True, False]  # significant but negligible
    assert not flag([test("d", 0.2, 0.9)], alpha=0.05)
