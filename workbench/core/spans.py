"""Character spans: the one rule for whether a retrieved chunk overlaps gold evidence.

A span hits another when both come from the same document and their `[start, end)` ranges
overlap; ranges that only touch (`[0, 100)` and `[100, 110)`) do not. Retrieval's hit rate, the
run summary and the ranking metrics all use it, so it holds under any chunking.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

__all__ = ["Span", "first_hit_rank", "overlaps"]


class Span(Protocol):
    # Read-only, so frozen models (Chunk, EvidenceSpan, the evaluation Span) satisfy it.
    @property
    def doc_id(self) -> str: ...

    @property
    def start(self) -> int: ...

    @property
    def end(self) -> int: ...


def overlaps(a: Span, b: Span) -> bool:
    return a.doc_id == b.doc_id and a.start < b.end and b.start < a.end


def first_hit_rank(retrieved: Sequence[Span], gold: Iterable[Span]) -> int | None:
    """1-based rank of the first retrieved span overlapping any gold span, or None."""
    spans = list(gold)
    for rank, span in enumerate(retrieved, 1):
        if any(overlaps(span, g) for g in spans):
            return rank
    return None
