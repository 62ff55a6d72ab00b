"""Confidence intervals for run metrics and paired tests between two runs.

Intervals are over questions, deterministic for a given `seed`, and chosen so that they do
not collapse where the plain percentile bootstrap does (5 passes out of 5 giving [1, 1]):

- the mean of a pass/fail metric (every value 0 or 1): the Wilson score interval;
- the difference between two runs on a pass/fail metric: Newcombe's paired score interval;
- anything else: a BCa (bias-corrected and accelerated) bootstrap, vectorised with numpy.

`CI.method` and `PairedCI.method` say which was used. Missing values (NaN, None: a metric
that failed or did not apply) are dropped, and every result reports `n`, the number of
values actually used.

`statistic` is any numpy-style reducer called as `statistic(array, axis=-1)`: `np.mean`
(the default), `np.median`, or your own function of that shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.core.errors import EvaluationError
from workbench.evaluation._intervals import bca, holm, is_binary, newcombe_paired, wilson

if TYPE_CHECKING:
    import pandas as pd

Statistic = Callable[..., Any]

# Resamples are drawn in blocks so that memory stays near this many cells for large runs.
_BLOCK_CELLS = 2_000_000
# Up to this many non-zero paired differences the sign-flip test enumerates every sign pattern.
_EXACT_SIGN_FLIP = 16


# How an interval was made: "wilson", "newcombe", "bca", "percentile" (BCa undefined), or
# "point" (one value, or values that are all equal and give a bootstrap nothing to resample).
Method = str


@dataclass(frozen=True, slots=True)
class CI:
    """A point estimate with a two-sided interval over `n` values, made by `method`."""

    estimate: float
    low: float
    high: float
    n: int
    method: Method = "point"

    @property
    def width(self) -> float:
        return self.high - self.low

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True, slots=True)
class PairedCI:
    """The mean of per-item differences `b - a`, its interval and a two-sided p-value.

    `significant` is True only when the interval excludes 0 *and* the p-value is below
    `1 - confidence`, so the two never tell different stories. One test on its own: when
    several metrics are compared at once, adjust the p-values with `holm_adjust`.
    """

    mean_diff: float
    low: float
    high: float
    n: int
    p_value: float
    significant: bool
    method: Method = "point"


def _as_array(values: Iterable[Any]) -> np.ndarray:
    try:
        arr = np.asarray(list(values) if not hasattr(values, "__array__") else values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise EvaluationError(f"values must be numbers: {exc}") from exc
    if arr.ndim != 1:
        raise EvaluationError(f"values must be one-dimensional, got shape {arr.shape}")
    return arr


def _check(n_resamples: int, confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise EvaluationError(f"confidence must be between 0 and 1, got {confidence}")
    if n_resamples < 1:
        raise EvaluationError(f"n_resamples must be at least 1, got {n_resamples}")


def _bootstrap(values: np.ndarray, statistic: Statistic, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """`n_resamples` values of `statistic` over resamples (with replacement) of `values`."""
    n = len(values)
    block = max(1, _BLOCK_CELLS // n)
    out = np.empty(n_resamples)
    for start in range(0, n_resamples, block):
        stop = min(n_resamples, start + block)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = statistic(values[idx], axis=-1)
    return out


def _percentile(boot: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = 1.0 - confidence
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def _continuous_interval(
    values: np.ndarray,
    estimate: float,
    statistic: Statistic,
    n_resamples: int,
    confidence: float,
    rng: np.random.Generator,
) -> tuple[float, float, Method]:
    """BCa bootstrap interval; the point itself when every value is equal (nothing to resample)."""
    if float(np.ptp(values)) <= 1e-12 * max(1.0, float(np.abs(values).max())):  # equal up to rounding
        return estimate, estimate, "point"
    boot = _bootstrap(values, statistic, n_resamples, rng)
    interval = bca(values, estimate, boot, statistic, confidence, _BLOCK_CELLS)
    if interval is None:
        return (*_percentile(boot, confidence), "percentile")
    return (*interval, "bca")


def _pass_fail(binary: bool | None, *arrays: np.ndarray) -> bool:
    if binary is None:
        return is_binary(*arrays)
    if binary and not all(bool(np.all((a == 0) | (a == 1))) for a in arrays):
        raise EvaluationError("binary=True, but some values are neither 0 nor 1")
    return binary


def bootstrap_ci(
    values: Iterable[Any],
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int | None = 0,
    statistic: Statistic = np.mean,
    binary: bool | None = None,
) -> CI:
    """Interval for `statistic` of `values` (NaN dropped).

    The mean of pass/fail values gets the Wilson score interval, so 5 out of 5 gives
    [0.57, 1] rather than [1, 1]; anything else a BCa bootstrap. `binary` says whether the
    values are pass/fail; None decides by whether every value is 0 or 1 (pass False for a
    quantity that only happens to be 0, like the cost of a local model). No values give an
    all-NaN CI with `n=0`; one value, or values that are all equal and not pass/fail, give
    the point `[v, v]`.
    """
    _check(n_resamples, confidence)
    arr = _as_array(values)
    arr = arr[~np.isnan(arr)]
    n = len(arr)
    if n == 0:
        return CI(math.nan, math.nan, math.nan, 0, "point")
    estimate = float(statistic(arr, axis=-1))
    if statistic is np.mean and _pass_fail(binary, arr):
        return CI(estimate, *wilson(int(arr.sum()), n, confidence), n, "wilson")
    low, high, method = _continuous_interval(
        arr, estimate, statistic, n_resamples, confidence, np.random.default_rng(seed)
    )
    return CI(estimate, low, high, n, method)


def _sign_flip_p(diffs: np.ndarray, n_resamples: int, rng: np.random.Generator) -> float:
    """Two-sided p for "the mean difference is 0" by flipping the signs of the differences.

    Exact (every sign pattern) for few non-zero differences; Monte Carlo otherwise.
    """
    nonzero = diffs[diffs != 0]
    m = len(nonzero)
    if m == 0:
        return 1.0
    observed = abs(float(nonzero.sum()))
    tol = 1e-9 * max(1.0, float(np.abs(nonzero).sum()))
    if m <= _EXACT_SIGN_FLIP:
        patterns = ((np.arange(2**m)[:, None] >> np.arange(m)) & 1) * 2 - 1
        sums = patterns @ nonzero
        return float(np.mean(np.abs(sums) >= observed - tol))
    hits = 0
    block = max(1, _BLOCK_CELLS // m)
    for start in range(0, n_resamples, block):
        rows = min(n_resamples, start + block) - start
        signs = rng.integers(0, 2, size=(rows, m)) * 2 - 1
        hits += int(np.sum(np.abs(signs @ nonzero) >= observed - tol))
    return (hits + 1) / (n_resamples + 1)


def paired_bootstrap(
    a: Iterable[Any],
    b: Iterable[Any],
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int | None = 0,
    binary: bool | None = None,
) -> PairedCI:
    """Compare two runs scored on the same items: mean of `b - a`, an interval and a p-value.

    `a[i]` and `b[i]` must belong to the same item; a pair with a missing side is dropped.
    The interval is Newcombe's paired score interval when the values are pass/fail, a BCa
    bootstrap of the differences otherwise; `binary` says which, None decides by whether
    every value is 0 or 1. The p-value is a two-sided sign-flip
    permutation test of "no difference" (on pass/fail values, McNemar's exact test).
    """
    _check(n_resamples, confidence)
    xa, xb = _as_array(a), _as_array(b)
    if len(xa) != len(xb):
        raise EvaluationError(f"paired values differ in length: {len(xa)} in A, {len(xb)} in B")
    keep = ~(np.isnan(xa) | np.isnan(xb))
    xa, xb = xa[keep], xb[keep]
    diffs = xb - xa
    n = len(diffs)
    if n == 0:
        return PairedCI(math.nan, math.nan, math.nan, 0, math.nan, False, "point")
    rng = np.random.default_rng(seed)
    mean_diff = float(diffs.mean())
    method: Method
    if _pass_fail(binary, xa, xb):
        (low, high), method = newcombe_paired(xa, xb, confidence), "newcombe"
    else:
        low, high, method = _continuous_interval(diffs, mean_diff, np.mean, n_resamples, confidence, rng)
    p_value = _sign_flip_p(diffs, n_resamples, rng)
    significant = bool(p_value < 1.0 - confidence and (low > 0 or high < 0))
    return PairedCI(mean_diff, low, high, n, p_value, significant, method)


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of p-values from tests run together (one per metric).

    Controls the chance of calling any metric different when none is; NaN p-values (nothing
    to test) stay NaN and do not count. Compare the adjusted values with the usual threshold.
    """
    return [float(p) for p in holm(p_values)]


def _failed_rows(frame: pd.DataFrame) -> pd.Series:
    """Rows whose question failed as a whole (the runner's `error` column is set)."""
    import pandas as pd

    if "error" not in frame.columns:
        return pd.Series(False, index=frame.index)
    return frame["error"].notna()


def metric_values(series: pd.Series) -> np.ndarray:
    """A metric column as a new float array: booleans become 0/1, None and unparseable cells NaN."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return np.array(series.astype("float64").to_numpy(na_value=np.nan), dtype=float)  # a writable copy

    def one(value: Any) -> float:
        if value is None or isinstance(value, str):
            return math.nan
        try:
            return float(value)
        except (TypeError, ValueError):
            return math.nan

    return np.array([one(v) for v in series], dtype=float)


def aggregate_with_ci(
    frame: pd.DataFrame,
    metric_columns: Sequence[str],
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> dict[str, CI]:
    """Mean and interval for each metric column of a per-question results table.

    Failed questions (a non-empty `error` cell) and missing scores are skipped; each
    CI's `n` says how many questions were left.
    """
    missing = [c for c in metric_columns if c not in frame.columns]
    if missing:
        available = ", ".join(map(str, frame.columns))
        raise EvaluationError(f"no metric column {', '.join(missing)} in the results; columns: {available}")
    ok = frame[~_failed_rows(frame)]
    return {
        column: bootstrap_ci(metric_values(ok[column]), n_resamples=n_resamples, confidence=confidence, seed=seed)
        for column in metric_columns
    }


def ci_metrics(cis: Mapping[str, CI]) -> dict[str, float]:
    """Flatten CIs to MLflow metrics: `<m>`, `<m>_ci_low`, `<m>_ci_high`, `<m>_n`."""
    out: dict[str, float] = {}
    for name, ci in cis.items():
        out[name] = ci.estimate
        out[f"{name}_ci_low"] = ci.low
        out[f"{name}_ci_high"] = ci.high
        out[f"{name}_n"] = float(ci.n)
    return out
