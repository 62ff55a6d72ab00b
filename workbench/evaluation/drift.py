"""Two-sample tests for drift between a reference and a current sample: numpy/scipy over arrays.

- `mmd_test`: query embeddings, maximum mean discrepancy with an RBF kernel (median-heuristic
  bandwidth) and a permutation p-value;
- `share_test`: category shares (routes, a guard triggering or not), Fisher's exact test for
  two categories, a chi-square test of homogeneity for more; the effect is the total variation
  distance between the two share vectors;
- `distribution_test`: a numeric metric, two-sample Kolmogorov-Smirnov, with a bootstrap CI of
  the difference of means;
- `holm`: the report runs many tests at once; Holm's step-down adjustment keeps the chance of
  any false flag at alpha.

Every function is deterministic for a given `seed`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from workbench.core.errors import MissingDependency

__all__ = ["DriftTest", "distribution_test", "flag", "holm", "mmd_test", "share_test"]

# The kernel matrix is (n+m)^2 floats and every permutation multiplies it by a vector: capping
# each side keeps a test of a large request log to seconds and ~30 MB.
MAX_SAMPLES = 1000
_PERMUTATION_BATCH = 100


@dataclass
class DriftTest:
    """One test's outcome. `effect` is on a scale a threshold can be set on: MMD (kernel
    units, 0..sqrt 2), total variation distance (0..1) or the KS statistic (0..1)."""

    name: str
    kind: str  # embeddings, shares, metric
    method: str
    statistic: float
    p_value: float
    effect: float
    n_reference: int
    n_current: int
    detail: dict[str, Any] = field(default_factory=dict)
    p_adjusted: float | None = None
    flagged: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _scipy_stats() -> Any:
    try:
        from scipy import stats
    except ImportError as exc:
        raise MissingDependency("scipy", "eval") from exc
    return stats


def _rbf_kernel(z: np.ndarray, bandwidth: float) -> np.ndarray:
    sq = np.einsum("ij,ij->i", z, z)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (z @ z.T), 0.0)
    kernel: np.ndarray = np.exp(-d2 / (2.0 * bandwidth**2))
    return kernel


def _median_distance(z: np.ndarray, rng: np.random.Generator) -> float:
    sample = z[rng.choice(len(z), size=min(len(z), 500), replace=False)]
    sq = np.einsum("ij,ij->i", sample, sample)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (sample @ sample.T), 0.0)
    upper = np.sqrt(d2[np.triu_indices(len(sample), k=1)])
    median = float(np.median(upper[upper > 0])) if np.any(upper > 0) else 1.0
    return median


def _subsample(x: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    return x if len(x) <= limit else x[rng.choice(len(x), size=limit, replace=False)]


def mmd_test(
    reference: np.ndarray,
    current: np.ndarray,
    *,
    permutations: int = 1000,
    seed: int = 0,
    max_samples: int = MAX_SAMPLES,
    name: str = "query_embeddings",
) -> DriftTest:
    """MMD² (the biased V-statistic) between the rows of two (n, dim) arrays, with the p-value
    of a permutation test: the share of random relabellings of the pooled rows whose MMD² is at
    least the observed one (counting the observed labelling, so p is never 0)."""
    x, y = np.asarray(reference, dtype=np.float64), np.asarray(current, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"need two (n, dim) arrays of one dim, got {x.shape} and {y.shape}")
    if len(x) < 2 or len(y) < 2:
        raise ValueError("need at least 2 rows on each side")
    rng = np.random.default_rng(seed)
    x, y = _subsample(x, max_samples, rng), _subsample(y, max_samples, rng)
    z = np.vstack([x, y])
    n, m = len(x), len(y)
    bandwidth = _median_distance(z, rng)
    kernel = _rbf_kernel(z, bandwidth)
    # MMD² = a·K·a with a = +1/n on the reference rows and -1/m on the current ones; a column
    # of permuted labels per permutation turns the whole null distribution into matrix products.
    signs = np.concatenate([np.full(n, 1.0 / n), np.full(m, -1.0 / m)])
    observed = float(signs @ kernel @ signs)
    null = np.empty(permutations)
    for start in range(0, permutations, _PERMUTATION_BATCH):
        count = min(_PERMUTATION_BATCH, permutations - start)
        a = np.stack([rng.permutation(signs) for _ in range(count)], axis=1)
        null[start : start + count] = np.einsum("ip,ip->p", a, kernel @ a)
    p_value = (1 + int(np.sum(null >= observed - 1e-12))) / (1 + permutations)
    return DriftTest(
        name=name,
        kind="embeddings",
        method="mmd_rbf_permutation",
        statistic=observed,
        p_value=p_value,
        effect=float(np.sqrt(max(observed, 0.0))),
        n_reference=n,
        n_current=m,
        detail={
            "bandwidth": bandwidth,
            "permutations": permutations,
            "null_mean": float(null.mean()),
            "null_q95": float(np.quantile(null, 0.95)),
            "null": null.tolist(),
        },
    )


def share_test(reference: Iterable[Any], current: Iterable[Any], *, name: str) -> DriftTest:
    """Whether the categories of `current` (routes; True/False for a guard triggering) come in
    the same shares as in `reference`."""
    stats = _scipy_stats()
    ref, cur = Counter(reference), Counter(current)
    categories = sorted(set(ref) | set(cur), key=str)
    n, m = sum(ref.values()), sum(cur.values())
    if n == 0 or m == 0:
        raise ValueError(f"{name}: need at least one row on each side")
    ref_share = {str(c): ref[c] / n for c in categories}
    cur_share = {str(c): cur[c] / m for c in categories}
    effect = 0.5 * sum(abs(ref_share[str(c)] - cur_share[str(c)]) for c in categories)
    table = np.array([[ref[c] for c in categories], [cur[c] for c in categories]])
    if len(categories) < 2:
        method, statistic, p_value = "none (one category)", 0.0, 1.0
    elif len(categories) == 2:
        method = "fisher_exact"
        odds, p = stats.fisher_exact(table)
        statistic, p_value = float(odds), float(p)
    else:
        method = "chi2_homogeneity"
        chi2, p, _, _ = stats.chi2_contingency(table)
        statistic, p_value = float(chi2), float(p)
    return DriftTest(
        name=name,
        kind="shares",
        method=method,
        statistic=statistic,
        p_value=p_value,
        effect=float(effect),
        n_reference=n,
        n_current=m,
        detail={"reference": ref_share, "current": cur_share},
    )


def distribution_test(
    reference: Sequence[float] | np.ndarray,
    current: Sequence[float] | np.ndarray,
    *,
    name: str,
    seed: int = 0,
    resamples: int = 2000,
    confidence: float = 0.95,
) -> DriftTest:
    """Two-sample KS test of a numeric metric (NaNs dropped), with a percentile bootstrap CI
    of mean(current) - mean(reference)."""
    stats = _scipy_stats()
    x = np.asarray(reference, dtype=np.float64)
    y = np.asarray(current, dtype=np.float64)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if len(x) < 2 or len(y) < 2:
        raise ValueError(f"{name}: need at least 2 values on each side")
    result = stats.ks_2samp(x, y)
    rng = np.random.default_rng(seed)
    boot = rng.choice(y, size=(resamples, len(y))).mean(axis=1) - rng.choice(x, size=(resamples, len(x))).mean(axis=1)
    tail = (1 - confidence) / 2
    return DriftTest(
        name=name,
        kind="metric",
        method="ks_2samp",
        statistic=float(result.statistic),
        p_value=float(result.pvalue),
        effect=float(result.statistic),
        n_reference=len(x),
        n_current=len(y),
        detail={
            "mean_reference": float(x.mean()),
            "mean_current": float(y.mean()),
            "mean_difference": float(y.mean() - x.mean()),
            "mean_difference_ci": [float(np.quantile(boot, tail)), float(np.quantile(boot, 1 - tail))],
            "confidence": confidence,
        },
    )


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (step-down, monotone, capped at 1): flagging where the adjusted
    value is below alpha keeps the family-wise false-flag rate at alpha."""
    order = np.argsort(p_values, kind="stable")
    k = len(p_values)
    adjusted = [0.0] * k
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (k - rank) * float(p_values[index])))
        adjusted[index] = running
    return adjusted


def flag(tests: list[DriftTest], *, alpha: float, min_effect: float = 0.0) -> bool:
    """Set each test's `p_adjusted` (Holm over all of `tests`) and `flagged` (adjusted p below
    `alpha` and effect at least `min_effect`, so a huge log does not flag a negligible shift);
    True when any test is flagged."""
    for test, adjusted in zip(tests, holm([t.p_value for t in tests]), strict=True):
        test.p_adjusted = adjusted
        test.flagged = adjusted < alpha and test.effect >= min_effect
    return any(t.flagged for t in tests)
