"""`claim_support`: an offline faithfulness score that scores claims, not strings.

The claims and their support are `core.claims` (shared with the `groundedness` guard, so the
guard and the metric agree on what an answer claims and how well the context supports it):
each sentence reduced to what it adds to the question, lexical support against the best
context sentence, embedding support for what the words leave open.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from workbench.core.claims import Claim, ClaimScorer, claims_of, context_sentences
from workbench.core.protocols import Embedder
from workbench.core.text import is_abstention
from workbench.evaluation.base import ScoreInput
from workbench.evaluation.metrics._ragas import NotApplicable, RagasBaseMetric, RagasMetric, RagasResult
from workbench.evaluation.metrics._vectors import VectorCache, as_vectors

__all__ = ["Claim", "ClaimSupport", "ClaimSupportScore", "claims_of"]


class ClaimSupportScore(RagasBaseMetric):
    """The ragas metric behind `ClaimSupport` (inputs: `response`, `retrieved_contexts` and,
    to discount what the answer copies from it, `user_input`)."""

    def __init__(
        self,
        name: str,
        vectors: VectorCache | None,
        *,
        lexical_threshold: float = 0.6,
        embedding_threshold: float = 0.7,
        embedding_floor: float = 0.4,
        embedding_full: float = 0.9,
        graded: bool = True,
    ) -> None:
        super().__init__(name=name, allowed_values=(0.0, 1.0))
        self.vectors = vectors
        self.scorer = ClaimScorer(
            lexical_threshold=lexical_threshold,
            embedding_threshold=embedding_threshold,
            embedding_floor=embedding_floor,
            embedding_full=embedding_full,
            graded=graded,
        )

    async def ascore(  # type: ignore[override]
        self, response: str, retrieved_contexts: Sequence[str], user_input: str = ""
    ) -> RagasResult:
        if is_abstention(response):
            raise NotApplicable("an abstention makes no claims")
        claims = claims_of(response, user_input)
        if not claims:
            raise NotApplicable("the answer makes no claim")
        sentences = context_sentences(retrieved_contexts)
        if not sentences:
            return RagasResult(value=0.0, reason="no context to support the answer")
        plan = self.scorer.plan(claims, sentences, embeddings=self.vectors is not None)
        texts = plan.embed
        vectors = await self.vectors.aembed(texts) if self.vectors is not None and texts else None
        return RagasResult(value=self.scorer.finish(plan, vectors).score)


class ClaimSupport(RagasMetric):
    """Offline faithfulness: how much of what the answer claims beyond the question the
    retrieved contexts support. Lexical only when built without an embedder."""

    requires: ClassVar[tuple[str, ...]] = ("answer", "contexts")

    def __init__(
        self,
        embedder: Embedder | VectorCache | None = None,
        name: str = "claim_support",
        **options: Any,
    ) -> None:
        vectors = as_vectors(embedder) if embedder is not None else None
        super().__init__(name, ClaimSupportScore(name, vectors, **options))

    def inputs(self, item: ScoreInput) -> Mapping[str, Any]:
        return {"response": item.answer, "retrieved_contexts": item.contexts, "user_input": item.question}
