"""Small helpers the benchmark scripts share."""

from __future__ import annotations


def nearest_rank(values: list[float], q: float) -> float:
    """The `q` quantile of `values` by nearest rank: always one of the measured values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
