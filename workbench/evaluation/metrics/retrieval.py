"""Retrieval metrics from gold evidence character spans: hit@k, recall@k, MRR and nDCG@k."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from workbench.evaluation.base import ScoreInput, Span
from workbench.evaluation.metrics import _spans
from workbench.evaluation.metrics._ragas import RagasBaseMetric, RagasMetric, RagasResult

__all__ = ["HitAtK", "RecallAtK", "MRR", "NDCGAtK", "SpanRankingMetric"]

SpanScore = Callable[[Sequence[Span], Sequence[Span], Any], float]


class SpanRankingMetric(RagasBaseMetric):
    """A ragas metric scoring ranked retrieved spans against gold spans with `fn(retrieved,
    gold, k)`."""

    def __init__(self, name: str, fn: SpanScore, k: int | None) -> None:
        super().__init__(name=name, allowed_values=(0.0, 1.0))
        self.fn = fn
        self.k = k

    async def ascore(self, retrieved: Sequence[Span], evidence: Sequence[Span]) -> RagasResult:  # type: ignore[override]
        return RagasResult(value=self.fn(retrieved, evidence, self.k))


class _Retrieval(RagasMetric):
    requires: ClassVar[tuple[str, ...]] = ("retrieved", "evidence")
    score_fn: ClassVar[Any]  # a SpanScore, stored as a staticmethod
    default_name: ClassVar[str]

    def __init__(self, k: int | None = 5, name: str | None = None) -> None:
        if k is not None and k < 1:
            raise ValueError("k must be at least 1")
        self.k = k
        name = name or self.default_name
        super().__init__(name, SpanRankingMetric(name, type(self).score_fn, k))

    def inputs(self, item: ScoreInput) -> Mapping[str, Any]:
        return {"retrieved": item.retrieved, "evidence": item.evidence}


class HitAtK(_Retrieval):
    """1 if any of the top-k retrieved spans overlaps a gold evidence span."""

    score_fn = staticmethod(_spans.hit_at_k)
    default_name = "hit_at_k"


class RecallAtK(_Retrieval):
    """Fraction of gold evidence spans overlapped by the top-k retrieved spans."""

    score_fn = staticmethod(_spans.recall_at_k)
    default_name = "recall_at_k"


class MRR(_Retrieval):
    """1 / rank of the first retrieved span overlapping gold evidence; 0 if none does (within
    the top k, when k is given; by default all retrieved spans count)."""

    score_fn = staticmethod(_spans.reciprocal_rank)
    default_name = "mrr"

    def __init__(self, k: int | None = None, name: str | None = None) -> None:
        super().__init__(k, name)


class NDCGAtK(_Retrieval):
    """nDCG@k with binary gains over gold spans (see `_spans.ndcg_at_k`)."""

    score_fn = staticmethod(_spans.ndcg_at_k)
    default_name = "ndcg_at_k"
