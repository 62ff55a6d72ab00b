"""`qa_relevance`: cosine of the question and answer embeddings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from workbench.core.protocols import Embedder
from workbench.evaluation.base import ScoreInput
from workbench.evaluation.metrics._ragas import NotApplicable, RagasBaseMetric, RagasMetric, RagasResult
from workbench.evaluation.metrics._vectors import VectorCache, as_vectors, cosine

__all__ = ["QaRelevance"]


class _QaCosine(RagasBaseMetric):
    def __init__(self, name: str, vectors: VectorCache) -> None:
        super().__init__(name=name, allowed_values=(-1.0, 1.0))
        self.vectors = vectors

    async def ascore(self, user_input: str, response: str) -> RagasResult:  # type: ignore[override]
        if not response.strip():
            raise NotApplicable("empty answer")
        vectors = await self.vectors.aembed([user_input, response])
        return RagasResult(value=float(cosine(vectors[:1], vectors[1:])[0, 0]))


class QaRelevance(RagasMetric):
    """How close the answer is to the question in embedding space (cosine, -1..1)."""

    requires: ClassVar[tuple[str, ...]] = ("question", "answer")

    def __init__(self, embedder: Embedder | VectorCache, name: str = "qa_relevance") -> None:
        super().__init__(name, _QaCosine(name, as_vectors(embedder)))

    def inputs(self, item: ScoreInput) -> Mapping[str, Any]:
        return {"user_input": item.question, "response": item.answer}
