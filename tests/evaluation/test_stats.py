from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from workbench.core.errors import EvaluationError
from workbench.evaluation.stats import (
    CI,
    aggregate_with_ci,
    bootstrap_ci,
    ci_metrics,
    holm_adjust,
    paired_bootstrap,
)

# -- bootstrap_ci -------------------------------------------------------------------------------


def test_interval_covers_the_true_mean_at_about_the_nominal_rate() -> None:
    rng = np.random.default_rng(2024)
    trials, covered = 400, 0
    for trial in range(trials):
        sample = rng.normal(loc=2.0, scale=1.0, size=40)
        covered += bootstrap_ci(sample, n_resamples=1000, seed=trial).contains(2.0)
    # Percentile intervals run a little narrow at small n; 95% nominal, a tolerant band.
    assert 0.88 <= covered / trials <= 0.985


def test_interval_narrows_as_n_grows() -> None:
    rng = np.random.default_rng(7)
    population = rng.exponential(size=20_000)
    widths = [bootstrap_ci(population[:n]).width for n in (25, 100, 400, 1600)]
    assert widths == sorted(widths, reverse=True)
    # Standard error goes as 1/sqrt(n): 64x the data, about 1/8 the width.
    assert 4 < widths[0] / widths[-1] < 16


def test_estimate_is_the_statistic_and_seed_makes_it_repeatable() -> None:
    values = [0.1, 0.4, 0.35, 0.8, 0.9, 0.2]
    ci = bootstrap_ci(values, seed=3)
    assert ci.estimate == pytest.approx(np.mean(values))
    assert ci.low < ci.estimate < ci.high and ci.n == 6
    assert bootstrap_ci(values, seed=3) == ci
    assert bootstrap_ci(values, seed=4) != ci
    median = bootstrap_ci(values, statistic=np.median)
    assert median.estimate == pytest.approx(np.median(values))


def test_empty_single_and_missing_values() -> None:
    empty = bootstrap_ci([])
    assert empty.n == 0 and all(math.isnan(x) for x in (empty.estimate, empty.low, empty.high))
    assert bootstrap_ci([0.7]) == CI(0.7, 0.7, 0.7, 1, "point")
    assert bootstrap_ci([1.0, None, float("nan"), 3.0]).n == 2
    assert bootstrap_ci(pd.Series([True, False, True, True])).estimate == pytest.approx(0.75)


@pytest.mark.parametrize("kwargs", [{"confidence": 1.0}, {"confidence": 0.0}, {"n_resamples": 0}])
def test_invalid_settings_are_evaluation_errors(kwargs: dict[str, float]) -> None:
    with pytest.raises(EvaluationError):
        bootstrap_ci([1.0, 2.0], **kwargs)  # type: ignore[arg-type]


def test_higher_confidence_gives_a_wider_interval() -> None:
    values = np.random.default_rng(1).normal(size=80)
    assert bootstrap_ci(values, confidence=0.99).width > bootstrap_ci(values, confidence=0.8).width
    passes = [1, 0, 1, 1, 0, 1, 1, 1]
    assert bootstrap_ci(passes, confidence=0.99).width > bootstrap_ci(passes, confidence=0.8).width


def test_a_perfect_small_pass_fail_run_is_not_reported_as_certain() -> None:
    # The percentile bootstrap of 5 passes out of 5 resamples only 1s: [1, 1]. Wilson does not.
    ci = bootstrap_ci([True] * 5)
    assert ci.method == "wilson" and ci.estimate == 1.0 and ci.high == 1.0
    assert ci.low == pytest.approx(0.5655, abs=1e-4)
    none = bootstrap_ci([0, 0, 0, 0, 0])
    assert (none.low, none.high) == (0.0, pytest.approx(0.4345, abs=1e-4))
    frame = pd.DataFrame({"hit": [True] * 5, "error": [None] * 5})
    assert aggregate_with_ci(frame, ["hit"])["hit"].low < 0.6


@pytest.mark.parametrize(("successes", "n"), [(0, 3), (1, 1), (3, 10), (17, 20), (40, 40), (123, 400)])
def test_wilson_matches_scipy(successes: int, n: int) -> None:
    stats = pytest.importorskip("scipy.stats")
    expected = stats.binomtest(successes, n).proportion_ci(0.9, method="wilson")
    ci = bootstrap_ci([1] * successes + [0] * (n - successes), confidence=0.9)
    assert (ci.low, ci.high) == (pytest.approx(expected.low, abs=1e-9), pytest.approx(expected.high, abs=1e-9))


def test_continuous_values_get_a_bca_interval_close_to_scipys() -> None:
    stats = pytest.importorskip("scipy.stats")
    skewed = np.random.default_rng(0).exponential(size=30)
    ci = bootstrap_ci(skewed, n_resamples=20_000)
    expected = stats.bootstrap(
        (skewed,), np.mean, method="BCa", n_resamples=20_000, rng=np.random.default_rng(1)
    ).confidence_interval
    assert ci.method == "bca"
    assert ci.low == pytest.approx(expected.low, abs=0.02) and ci.high == pytest.approx(expected.high, abs=0.03)
    # BCa follows the skew: a right-skewed mean's interval reaches further up than down.
    assert ci.high - ci.estimate > ci.estimate - ci.low


def test_binary_can_be_stated_instead_of_guessed() -> None:
    # A local model's cost is 0 on every question: a quantity, not five failures.
    assert bootstrap_ci([0.0] * 5, binary=False).method == "point"
    assert paired_bootstrap([0.0] * 5, [0.0] * 5, binary=False).high == 0.0
    assert paired_bootstrap([0.0] * 5, [0.0] * 5).method == "newcombe"
    with pytest.raises(EvaluationError, match="neither 0 nor 1"):
        bootstrap_ci([0.5, 1.0], binary=True)


def test_equal_continuous_values_give_their_point_and_say_so() -> None:
    ci = bootstrap_ci([0.4, 0.4, 0.4])
    assert ci.method == "point" and ci.n == 3 and ci.low == ci.estimate == ci.high == pytest.approx(0.4)


# -- paired_bootstrap ---------------------------------------------------------------------------


def test_paired_test_detects_a_real_shift() -> None:
    rng = np.random.default_rng(11)
    a = rng.normal(size=80)
    b = a + 0.4 + rng.normal(scale=0.5, size=80)  # B better by 0.4 on average
    result = paired_bootstrap(a, b)
    assert result.significant and result.p_value < 0.01
    assert 0 < result.low < 0.4 < result.high
    assert result.mean_diff == pytest.approx(np.mean(b - a)) and result.n == 80


def test_paired_test_rarely_flags_a_null() -> None:
    rng = np.random.default_rng(5)
    trials = 200
    flagged = sum(
        paired_bootstrap(base := rng.normal(size=40), base + rng.normal(size=40), n_resamples=500, seed=t).significant
        for t in range(trials)
    )
    assert flagged / trials <= 0.10  # nominal 5%


def test_paired_on_a_pass_fail_metric_with_a_systematic_loss() -> None:
    a = np.array([1] * 30 + [0] * 10, dtype=float)
    b = a.copy()
    b[:12] = 0  # B loses 12 questions A got right, wins none
    result = paired_bootstrap(a, b)
    assert result.mean_diff == pytest.approx(-12 / 40)
    assert result.significant and result.high < 0


def test_sign_flip_is_exact_for_few_differences() -> None:
    # Five questions, all +1: 2 of the 32 sign patterns are as extreme, p = 1/16.
    assert paired_bootstrap([0] * 5, [1] * 5).p_value == pytest.approx(2 / 32)
    assert not paired_bootstrap([0] * 5, [1] * 5).significant
    identical = paired_bootstrap([0.3, 0.5, 0.9], [0.3, 0.5, 0.9])
    assert identical.p_value == 1.0 and identical.mean_diff == 0.0 and not identical.significant


def pass_fail_table(both: int, only_b: int, only_a: int, neither: int) -> tuple[list[int], list[int]]:
    a = [1] * both + [0] * only_b + [1] * only_a + [0] * neither
    b = [1] * both + [1] * only_b + [0] * only_a + [0] * neither
    return a, b


def test_paired_pass_fail_uses_newcombes_interval() -> None:
    # Newcombe (1998), Statistics in Medicine 17:2635, method 10 on (36, 12, 2, 0): 0.0569 to 0.3404.
    result = paired_bootstrap(*pass_fail_table(36, 12, 2, 0))
    assert result.method == "newcombe" and result.mean_diff == pytest.approx(0.2)
    assert (result.low, result.high) == (pytest.approx(0.0569, abs=1e-4), pytest.approx(0.3404, abs=1e-4))
    # Altman et al., Statistics with Confidence (2000), table 6.2: 14, 5, 0, 22 gives 0.011 to 0.226.
    altman = paired_bootstrap(*pass_fail_table(14, 5, 0, 22))
    assert (altman.low, altman.high) == (pytest.approx(0.0115, abs=1e-4), pytest.approx(0.2265, abs=1e-4))


def test_a_small_pass_fail_sweep_is_not_reported_as_certain() -> None:
    # B passes 5 questions A failed: the percentile bootstrap says [1, 1].
    sweep = paired_bootstrap([0] * 5, [1] * 5)
    assert sweep.mean_diff == 1.0 and sweep.high == 1.0 and 0.3 < sweep.low < 0.45
    # Five ties say "no difference seen", not "no difference possible": not [0, 0].
    ties = paired_bootstrap([1] * 5, [1] * 5)
    assert ties.low == pytest.approx(-0.4345, abs=1e-4) and ties.high == pytest.approx(0.4345, abs=1e-4)


def test_paired_continuous_uses_bca_unless_every_difference_is_equal() -> None:
    rng = np.random.default_rng(4)
    a = rng.random(30)
    assert paired_bootstrap(a, a + rng.exponential(scale=0.1, size=30)).method == "bca"
    shifted = paired_bootstrap([0.2, 0.5, 0.7], [0.3, 0.6, 0.8])
    assert shifted.method == "point" and shifted.low == shifted.high == pytest.approx(0.1)


def test_holm_adjusts_step_down_and_skips_untested_metrics() -> None:
    adjusted = holm_adjust([0.01, 0.04, 0.03, math.nan, 0.005])
    assert adjusted[:3] + adjusted[4:] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert math.isnan(adjusted[3])
    assert holm_adjust([0.2, 0.9]) == pytest.approx([0.4, 0.9])
    assert holm_adjust([0.011, 0.01]) == pytest.approx([0.02, 0.02])  # never below a smaller p's
    assert holm_adjust([0.6, 0.7]) == [1.0, 1.0] and holm_adjust([]) == []


def test_paired_drops_incomplete_pairs_and_checks_lengths() -> None:
    result = paired_bootstrap([1.0, None, 0.0, 1.0], [1.0, 1.0, float("nan"), 0.0])
    assert result.n == 2 and result.mean_diff == pytest.approx(-0.5)
    assert paired_bootstrap([None], [1.0]).n == 0
    one = paired_bootstrap([0.2], [0.5])
    assert one.n == 1 and one.low == one.high == pytest.approx(0.3) and not one.significant
    with pytest.raises(EvaluationError, match="3 in A, 2 in B"):
        paired_bootstrap([1, 2, 3], [1, 2])


def test_large_runs_are_processed_in_blocks_with_the_same_answer_each_time() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.random(5000), rng.random(5000)
    first = paired_bootstrap(a, b, n_resamples=1000, seed=9)
    assert first == paired_bootstrap(a, b, n_resamples=1000, seed=9)
    assert first.low < first.mean_diff < first.high


# -- aggregate_with_ci / ci_metrics -------------------------------------------------------------


def test_aggregate_skips_failed_and_missing_rows_but_reports_n() -> None:
    frame = pd.DataFrame(
        {
            "question_id": ["q1", "q2", "q3", "q4", "q5"],
            "hit": [True, False, True, True, False],
            "faithfulness": [0.9, None, 0.5, 0.7, 1.0],
            "error": [None, None, None, None, "ProviderTimeout: slow"],
        }
    )
    cis = aggregate_with_ci(frame, ["hit", "faithfulness"])
    assert cis["hit"].n == 4 and cis["hit"].estimate == pytest.approx(0.75)
    assert cis["faithfulness"].n == 3 and cis["faithfulness"].estimate == pytest.approx(0.7)
    assert cis["faithfulness"].low <= 0.7 <= cis["faithfulness"].high
    assert frame["faithfulness"].isna().sum() == 1  # the caller's frame is untouched


def test_aggregate_handles_json_loaded_object_columns() -> None:
    # Tables read back from MLflow hold plain Python objects, None for gaps.
    frame = pd.DataFrame({"score": pd.Series([1, 0.5, None, 0], dtype=object)})
    assert aggregate_with_ci(frame, ["score"])["score"].n == 3


def test_aggregate_unknown_column_lists_the_columns() -> None:
    with pytest.raises(EvaluationError, match="no metric column recall.*columns: question_id, hit"):
        aggregate_with_ci(pd.DataFrame({"question_id": ["q1"], "hit": [True]}), ["recall"])


def test_ci_metrics_flattens_for_mlflow() -> None:
    flat = ci_metrics({"hit": CI(0.5, 0.4, 0.6, 100), "empty": CI(math.nan, math.nan, math.nan, 0)})
    assert {k: v for k, v in flat.items() if not k.startswith("empty")} == {
        "hit": 0.5,
        "hit_ci_low": 0.4,
        "hit_ci_high": 0.6,
        "hit_n": 100.0,
    }
    assert flat["empty_n"] == 0.0 and math.isnan(flat["empty"])
    assert all(isinstance(v, float) for v in flat.values())
