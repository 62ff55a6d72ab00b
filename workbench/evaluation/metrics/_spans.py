"""Ranking scores from gold evidence character spans, independent of chunking.

A retrieved span hits a gold span by the one overlap rule of `workbench.core.spans` (same
document, overlapping `[start, end)`), the rule retrieval's hit rate uses too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from workbench.core.spans import Span, first_hit_rank, overlaps


def hit_at_k(retrieved: Sequence[Span], gold: Sequence[Span], k: int) -> float:
    return float(first_hit_rank(retrieved[:k], gold) is not None)


def recall_at_k(retrieved: Sequence[Span], gold: Sequence[Span], k: int) -> float:
    """Fraction of gold spans overlapped by at least one of the top-k retrieved spans."""
    top = retrieved[:k]
    covered = sum(1 for g in gold if any(overlaps(span, g) for span in top))
    return covered / len(gold)


def reciprocal_rank(retrieved: Sequence[Span], gold: Sequence[Span], k: int | None = None) -> float:
    rank = first_hit_rank(retrieved if k is None else retrieved[:k], gold)
    return 1.0 / rank if rank else 0.0


def ndcg_at_k(retrieved: Sequence[Span], gold: Sequence[Span], k: int) -> float:
    """Binary-gain nDCG over gold spans: a retrieved span gains the number of gold spans it
    covers that no earlier span covered, so duplicates of one passage earn nothing. The ideal
    ranking covers one new gold span per rank; the ratio is capped at 1 (one span can cover
    several gold spans at once)."""
    seen: set[int] = set()
    dcg = 0.0
    for rank, span in enumerate(retrieved[:k], 1):
        new = {i for i, g in enumerate(gold) if i not in seen and overlaps(span, g)}
        seen |= new
        dcg += len(new) / math.log2(rank + 1)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(k, len(gold)) + 1))
    return min(1.0, dcg / ideal)
