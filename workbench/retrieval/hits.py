"""Retrieval hits from gold evidence character spans, independent of chunking.

A chunk hits when it comes from the evidence's document and its `[start, end)` overlaps the
evidence's `[start, end)`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol


class Span(Protocol):
    # Read-only, so frozen models (Chunk, EvidenceSpan) satisfy it.
    @property
    def doc_id(self) -> str: ...

    @property
    def start(self) -> int: ...

    @property
    def end(self) -> int: ...


def overlaps(chunk: Span, span: Span) -> bool:
    return chunk.doc_id == span.doc_id and chunk.start < span.end and span.start < chunk.end


def first_hit_rank(chunks: Sequence[Span], evidence: Iterable[Span]) -> int | None:
    """1-based rank of the first chunk overlapping any evidence span, or None."""
    spans = list(evidence)
    for rank, chunk in enumerate(chunks, 1):
        if any(overlaps(chunk, span) for span in spans):
            return rank
    return None


def evidence_hit(chunks: Sequence[Span], evidence: Iterable[Span], k: int | None = None) -> bool:
    """Whether any of the first `k` chunks (all, if None) overlaps the evidence."""
    rank = first_hit_rank(chunks if k is None else chunks[:k], evidence)
    return rank is not None
