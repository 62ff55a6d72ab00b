"""`claim_support`: an offline faithfulness score that scores claims, not strings.

The answer is split into claims (its sentences, `core.text.split_sentences`). What a claim
merely copies from the question is not evidence of faithfulness: "According to the sources, X
was founded by Y" restates "who founded X?", and only "Y" is claimed. So each claim is reduced
to its *new* content words (`core.text.content_words` of the claim that are not content words
of the question; framing words such as "according" or "sources" are stop words). A claim that
only restates the question is left out, unless every claim does, when the claims are scored
whole.

Each claim is compared with every context sentence. Its lexical support is the share of its
new words found in the best sentence; its embedding support is the cosine of its new words
(the claim itself when it copies nothing) with the best sentence, mapped linearly from
[`embedding_floor`, `embedding_full`] onto [0, 1]. A claim's support is the larger of the two;
the score is the mean over claims (or, with `graded=False`, the fraction of claims passing
either threshold). Embeddings are computed only for claims the words do not fully support.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from workbench.core.protocols import Embedder
from workbench.core.text import content_words, is_abstention, split_sentences, stem, words
from workbench.evaluation.base import ScoreInput
from workbench.evaluation.metrics._ragas import NotApplicable, RagasBaseMetric, RagasMetric, RagasResult
from workbench.evaluation.metrics._vectors import VectorCache, as_vectors, cosine

__all__ = ["Claim", "ClaimSupport", "ClaimSupportScore", "claims_of"]


@dataclass(frozen=True)
class Claim:
    """One sentence of an answer: the words that must be supported, and the text to embed."""

    sentence: str
    words: frozenset[str]
    text: str


def _claim(sentence: str, question: frozenset[str]) -> Claim | None:
    """The claim a sentence makes beyond the question, or None when it only restates it."""
    own = frozenset(content_words(sentence)) or frozenset(words(sentence))
    new = own - question
    if not own or not new:
        return None
    if new == own:
        return Claim(sentence, own, sentence)
    kept = [w for w in words(sentence, keep_case=True) if stem(w.lower()) in new]
    return Claim(sentence, new, " ".join(kept))


def claims_of(answer: str, question: str = "") -> list[Claim]:
    """The claims of `answer`, each reduced to what it adds to `question`. When every sentence
    only restates the question, the sentences are the claims, whole."""
    asked = frozenset(content_words(question))
    sentences = split_sentences(answer)
    claims = [c for c in (_claim(s, asked) for s in sentences) if c is not None]
    if claims:
        return claims
    whole = (_claim(s, frozenset()) for s in sentences)
    return [c for c in whole if c is not None]


def lexical_support(claim: Claim, sentences: Sequence[set[str]]) -> float:
    if not claim.words or not sentences:
        return 0.0
    return max(len(claim.words & s) for s in sentences) / len(claim.words)


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
        self.lexical_threshold = lexical_threshold
        self.embedding_threshold = embedding_threshold
        self.embedding_floor = embedding_floor
        self.embedding_full = embedding_full
        self.graded = graded

    async def ascore(  # type: ignore[override]
        self, response: str, retrieved_contexts: Sequence[str], user_input: str = ""
    ) -> RagasResult:
        if is_abstention(response):
            raise NotApplicable("an abstention makes no claims")
        claims = claims_of(response, user_input)
        if not claims:
            raise NotApplicable("the answer makes no claim")
        sentences = [s for context in retrieved_contexts for s in split_sentences(context)]
        if not sentences:
            return RagasResult(value=0.0, reason="no context to support the answer")
        token_sets = [set(content_words(s)) for s in sentences]
        lexical = np.array([lexical_support(c, token_sets) for c in claims])
        semantic = await self._semantic(claims, sentences, lexical)
        if self.graded:
            span = self.embedding_full - self.embedding_floor
            scaled = np.clip((semantic - self.embedding_floor) / span, 0.0, 1.0)
            support = np.maximum(lexical, scaled)
        else:
            support = (lexical >= self.lexical_threshold) | (semantic >= self.embedding_threshold)
        return RagasResult(value=float(np.mean(support)))

    async def _semantic(self, claims: list[Claim], sentences: list[str], lexical: np.ndarray) -> np.ndarray:
        best = np.zeros(len(claims))
        open_claims = [i for i, score in enumerate(lexical) if score < 1.0]
        if self.vectors is None or not open_claims:
            return best
        vectors = await self.vectors.aembed([claims[i].text for i in open_claims] + sentences)
        sims = cosine(vectors[: len(open_claims)], vectors[len(open_claims) :])
        best[open_claims] = sims.max(axis=1)
        return best


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
