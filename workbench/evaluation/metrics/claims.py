"""`claim_support`: an offline faithfulness score.

The answer is split into claims (its sentences); each claim is compared with every context
sentence. Its lexical support is the share of its content words found in the best sentence;
its embedding support is the cosine with the best sentence, mapped linearly from
[`embedding_floor`, `embedding_full`] onto [0, 1]. A claim's support is the larger of the two;
the score is the mean over claims (or, with `graded=False`, the fraction of claims passing
either threshold). Embeddings are computed only for claims the words do not fully support.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from workbench.core.protocols import Embedder
from workbench.evaluation.base import ScoreInput
from workbench.evaluation.metrics._ragas import NotApplicable, RagasBaseMetric, RagasMetric, RagasResult
from workbench.evaluation.metrics._text import content_tokens, looks_like_abstention, split_sentences
from workbench.evaluation.metrics._vectors import VectorCache, as_vectors, cosine

__all__ = ["ClaimSupport", "ClaimSupportScore"]


def lexical_support(claim: str, sentences: Sequence[set[str]]) -> float:
    tokens = set(content_tokens(claim))
    if not tokens or not sentences:
        return 0.0
    return max(len(tokens & s) for s in sentences) / len(tokens)


class ClaimSupportScore(RagasBaseMetric):
    """The ragas metric behind `ClaimSupport` (inputs: `response`, `retrieved_contexts`)."""

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
        self.lexical_threshold = lexical_threshold
        self.embedding_threshold = embedding_threshold
        self.embedding_floor = embedding_floor
        self.embedding_full = embedding_full
        self.graded = graded

    async def ascore(self, response: str, retrieved_contexts: Sequence[str]) -> RagasResult:  # type: ignore[override]
        if looks_like_abstention(response):
            raise NotApplicable("an abstention makes no claims")
        claims = split_sentences(response)
        sentences = [s for context in retrieved_contexts for s in split_sentences(context)]
        if not sentences:
            return RagasResult(value=0.0, reason="no context to support the answer")
        token_sets = [set(content_tokens(s)) for s in sentences]
        lexical = np.array([lexical_support(c, token_sets) for c in claims])
        semantic = await self._semantic(claims, sentences, lexical)
        if self.graded:
            span = self.embedding_full - self.embedding_floor
            scaled = np.clip((semantic - self.embedding_floor) / span, 0.0, 1.0)
            support = np.maximum(lexical, scaled)
        else:
            support = (lexical >= self.lexical_threshold) | (semantic >= self.embedding_threshold)
        return RagasResult(value=float(np.mean(support)))

    async def _semantic(self, claims: list[str], sentences: list[str], lexical: np.ndarray) -> np.ndarray:
        best = np.zeros(len(claims))
        open_claims = [i for i, score in enumerate(lexical) if score < 1.0]
        if self.vectors is None or not open_claims:
            return best
        vectors = await self.vectors.aembed([claims[i] for i in open_claims] + sentences)
        sims = cosine(vectors[: len(open_claims)], vectors[len(open_claims) :])
        best[open_claims] = sims.max(axis=1)
        return best


class ClaimSupport(RagasMetric):
    """Offline faithfulness: how much of the answer the retrieved contexts support. Lexical
    only when built without an embedder."""

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
        return {"response": item.answer, "retrieved_contexts": item.contexts}
