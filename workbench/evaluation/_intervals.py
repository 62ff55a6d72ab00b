"""Interval formulas that do not degenerate where the percentile bootstrap does.

- Wilson score interval for a proportion: 5 passes out of 5 give [0.57, 1], not [1, 1].
- Newcombe's hybrid score interval (his method 10, 1998) for the difference of two paired
  proportions: Wilson intervals of both margins, joined with the pairs' correlation.
- BCa (bias-corrected and accelerated) bootstrap for continuous values: the percentile
  interval shifted for the bootstrap distribution's bias and skew.
- Holm's step-down adjustment of p-values for testing several metrics at once.

Written with numpy and the standard library's normal distribution, so the core install (no
scipy) gives the same numbers as a full one; the tests check them against scipy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from statistics import NormalDist
from typing import Any

import numpy as np

_NORMAL = NormalDist()


def is_binary(*arrays: np.ndarray) -> bool:
    """Whether every value is 0 or 1 (a pass/fail metric), with at least one value."""
    present = [a for a in arrays if len(a)]
    return bool(present) and all(bool(np.all((a == 0) | (a == 1))) for a in present)


def _z(confidence: float) -> float:
    return _NORMAL.inv_cdf(0.5 + confidence / 2)


def wilson(successes: int, n: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval for `successes` out of `n`."""
    if n == 0:
        return math.nan, math.nan
    z = _z(confidence)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # At 0 or n successes the bound is exactly 0 or 1; rounding must not leave it just inside.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def newcombe_paired(a: np.ndarray, b: np.ndarray, confidence: float) -> tuple[float, float]:
    """Newcombe's interval for mean(b) - mean(a), where a[i] and b[i] are 0/1 on one item."""
    n = len(a)
    if n == 0:
        return math.nan, math.nan
    both = int(np.sum((a == 1) & (b == 1)))
    only_b = int(np.sum((a == 0) & (b == 1)))
    only_a = int(np.sum((a == 1) & (b == 0)))
    neither = n - both - only_b - only_a
    p_b, p_a = (both + only_b) / n, (both + only_a) / n
    low_b, high_b = wilson(both + only_b, n, confidence)
    low_a, high_a = wilson(both + only_a, n, confidence)
    # The correlation of the pairs, with Newcombe's continuity correction when it is positive;
    # 0 when a margin is empty (every item passed, or failed, on one side).
    margins = (both + only_b) * (only_a + neither) * (both + only_a) * (only_b + neither)
    phi = 0.0
    if margins > 0:
        cross = both * neither - only_b * only_a
        corrected = cross - n / 2 if cross > n / 2 else (cross if cross < 0 else 0.0)
        phi = corrected / math.sqrt(margins)
    diff = p_b - p_a
    below = (p_b - low_b) ** 2 - 2 * phi * (p_b - low_b) * (high_a - p_a) + (high_a - p_a) ** 2
    above = (high_b - p_b) ** 2 - 2 * phi * (high_b - p_b) * (p_a - low_a) + (p_a - low_a) ** 2
    return max(-1.0, diff - math.sqrt(max(below, 0.0))), min(1.0, diff + math.sqrt(max(above, 0.0)))


def _jackknife(values: np.ndarray, statistic: Callable[..., Any], block_cells: int) -> np.ndarray:
    """`statistic` of `values` with each value left out in turn."""
    n = len(values)
    out = np.empty(n)
    rows = max(1, block_cells // max(1, n - 1))
    columns = np.arange(n - 1)
    for start in range(0, n, rows):
        left_out = np.arange(start, min(n, start + rows))
        idx = columns[None, :] + (columns[None, :] >= left_out[:, None])
        out[start : start + len(left_out)] = statistic(values[idx], axis=-1)
    return out


def bca(
    values: np.ndarray,
    estimate: float,
    boot: np.ndarray,
    statistic: Callable[..., Any],
    confidence: float,
    block_cells: int,
) -> tuple[float, float] | None:
    """BCa interval from bootstrap replicates `boot` of `statistic(values)` = `estimate`.

    None when the correction is undefined (every replicate on one side of the estimate);
    the caller then falls back to the percentile interval.
    """
    below = (np.sum(boot < estimate) + 0.5 * np.sum(boot == estimate)) / len(boot)
    if not 0.0 < below < 1.0:
        return None
    bias = _NORMAL.inv_cdf(float(below))
    jack = _jackknife(values, statistic, block_cells)
    spread = jack.mean() - jack
    denominator = 6.0 * float(np.sum(spread**2)) ** 1.5
    acceleration = float(np.sum(spread**3)) / denominator if denominator > 0 else 0.0
    alpha = 1.0 - confidence
    levels = []
    for tail in (alpha / 2, 1 - alpha / 2):
        z = bias + _NORMAL.inv_cdf(tail)
        shrink = 1.0 - acceleration * z
        if shrink <= 0:  # an extreme acceleration sends the level past the end of the replicates
            levels.append(0.0 if tail < 0.5 else 1.0)
        else:
            levels.append(_NORMAL.cdf(bias + z / shrink))
    low, high = np.quantile(boot, levels)
    return float(low), float(high)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment; NaN p-values stay NaN and do not count as tests."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(len(p), math.nan)
    tested = np.flatnonzero(~np.isnan(p))
    m = len(tested)
    order = tested[np.argsort(p[tested], kind="stable")]
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p[index])))
        out[index] = running
    return out
