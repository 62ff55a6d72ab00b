"""Fusing ranked lists from several retrievers.

Each input is a ranking: `[(item, score), ...]`, best first. Both functions return
`[(item, fused_score), ...]`, best first, ties broken by first appearance.

- `rrf`: reciprocal rank fusion, `sum_r w_r / (k + rank_r)` with 1-based ranks (weights 1
  unless given); scores are ignored, so retrievers on different scales mix safely.
- `weighted`: each ranking's scores min-max normalised to [0, 1], then `sum_r w_r * s_r`;
  an item a retriever did not return contributes 0 from it.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

from workbench.core.errors import ConfigError

T = TypeVar("T", bound=Hashable)
Ranking = Sequence[tuple[T, float]]


def minmax(ranking: Ranking[T]) -> dict[T, float]:
    """Scores scaled to [0, 1]; all-equal scores become 1.0 (each is the best there is)."""
    if not ranking:
        return {}
    scores = [s for _, s in ranking]
    lo, hi = min(scores), max(scores)
    span = hi - lo
    return {item: (s - lo) / span if span > 0 else 1.0 for item, s in ranking}


def _sorted(totals: dict[T, float], order: dict[T, int]) -> list[tuple[T, float]]:
    return sorted(totals.items(), key=lambda kv: (-kv[1], order[kv[0]]))


def _first_seen(rankings: Sequence[Ranking[T]]) -> dict[T, int]:
    order: dict[T, int] = {}
    for ranking in rankings:
        for item, _ in ranking:
            order.setdefault(item, len(order))
    return order


def rrf(rankings: Sequence[Ranking[T]], k: int = 60, weights: Sequence[float] | None = None) -> list[tuple[T, float]]:
    if k <= 0:
        raise ConfigError("rrf_k must be positive")
    if weights is not None and len(weights) != len(rankings):
        raise ConfigError(f"{len(rankings)} rankings but {len(weights)} weights")
    totals: dict[T, float] = {}
    for i, ranking in enumerate(rankings):
        w = 1.0 if weights is None else weights[i]
        for rank, (item, _) in enumerate(ranking, 1):
            totals[item] = totals.get(item, 0.0) + w / (k + rank)
    return _sorted(totals, _first_seen(rankings))


def weighted(rankings: Sequence[Ranking[T]], weights: Sequence[float]) -> list[tuple[T, float]]:
    if len(rankings) != len(weights):
        raise ConfigError(f"{len(rankings)} rankings but {len(weights)} weights")
    totals: dict[T, float] = {}
    for ranking, w in zip(rankings, weights, strict=True):
        for item, s in minmax(ranking).items():
            totals[item] = totals.get(item, 0.0) + w * s
    for item in _first_seen(rankings):
        totals.setdefault(item, 0.0)
    return _sorted(totals, _first_seen(rankings))
