"""Retrieval hits from gold evidence character spans, independent of chunking.

The overlap rule itself is `workbench.core.spans` (shared with the ranking metrics); this
module adds the cut-off at `k`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from workbench.core.spans import Span, first_hit_rank, overlaps

__all__ = ["Span", "evidence_hit", "first_hit_rank", "overlaps"]


def evidence_hit(chunks: Sequence[Span], evidence: Iterable[Span], k: int | None = None) -> bool:
    """Whether any of the first `k` chunks (all, if None) overlaps the evidence."""
    rank = first_hit_rank(chunks if k is None else chunks[:k], evidence)
    return rank is not None
