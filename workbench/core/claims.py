"""Claims and their support by a context: the one scorer behind the `claim_support` metric
(evaluation) and the `groundedness` guard (guardrails).

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

Scoring is split into `ClaimScorer.plan` (words only) and `ClaimScorer.finish` (with the
vectors the plan asked for), so that the metric can fetch vectors asynchronously and the guard
synchronously (`ClaimScorer.score`) without two copies of the arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from workbench.core.text import content_words, split_sentences, stem, words

__all__ = ["Claim", "ClaimPlan", "ClaimScorer", "ClaimScores", "claims_of", "context_sentences", "lexical_support"]


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


def context_sentences(contexts: Sequence[str]) -> list[str]:
    """The sentences claims are compared with: every sentence of every context."""
    return [s for context in contexts for s in split_sentences(context)]


def lexical_support(claim: Claim, sentences: Sequence[set[str]]) -> float:
    """The share of the claim's words found in the best of `sentences` (content-word sets)."""
    if not claim.words or not sentences:
        return 0.0
    return max(len(claim.words & s) for s in sentences) / len(claim.words)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of every row of `a` with every row of `b`."""
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T


@dataclass(frozen=True)
class ClaimPlan:
    """The word-level half of scoring: lexical supports, and the texts whose vectors are needed
    (the open claims' texts, then the context sentences); `embed` is empty when none are."""

    claims: list[Claim]
    sentences: list[str]
    lexical: np.ndarray
    open_claims: list[int]

    @property
    def embed(self) -> list[str]:
        if not self.open_claims:
            return []
        return [self.claims[i].text for i in self.open_claims] + self.sentences


@dataclass(frozen=True)
class ClaimScores:
    """Per-claim supports (graded in [0, 1], or 0/1 when not graded) and their mean, the score."""

    claims: list[Claim]
    lexical: np.ndarray
    semantic: np.ndarray
    support: np.ndarray

    @property
    def score(self) -> float:
        return float(np.mean(self.support))


@dataclass(frozen=True)
class ClaimScorer:
    """The claim-support arithmetic and its options (see the module docstring)."""

    lexical_threshold: float = 0.6
    embedding_threshold: float = 0.7
    embedding_floor: float = 0.4
    embedding_full: float = 0.9
    graded: bool = True

    def plan(self, claims: list[Claim], sentences: list[str], *, embeddings: bool) -> ClaimPlan:
        """Lexical supports of `claims` by `sentences`; with `embeddings`, which claims the words
        leave open (support below 1) and so need vectors."""
        token_sets = [set(content_words(s)) for s in sentences]
        lexical = np.array([lexical_support(c, token_sets) for c in claims])
        open_claims = [i for i, score in enumerate(lexical) if score < 1.0] if embeddings and sentences else []
        return ClaimPlan(claims, sentences, lexical, open_claims)

    def finish(self, plan: ClaimPlan, vectors: np.ndarray | None) -> ClaimScores:
        """Combine the plan's lexical supports with the vectors of `plan.embed` (None: words only)."""
        semantic = np.zeros(len(plan.claims))
        if vectors is not None and plan.open_claims:
            n = len(plan.open_claims)
            semantic[plan.open_claims] = cosine(vectors[:n], vectors[n:]).max(axis=1)
        if self.graded:
            span = self.embedding_full - self.embedding_floor
            scaled = np.clip((semantic - self.embedding_floor) / span, 0.0, 1.0)
            support = np.maximum(plan.lexical, scaled)
        else:
            support = ((plan.lexical >= self.lexical_threshold) | (semantic >= self.embedding_threshold)).astype(float)
        return ClaimScores(plan.claims, plan.lexical, semantic, support)

    def score(
        self, claims: list[Claim], sentences: list[str], embed: Callable[[list[str]], np.ndarray] | None = None
    ) -> ClaimScores:
        """Plan and finish in one synchronous call, embedding with `embed` when given."""
        plan = self.plan(claims, sentences, embeddings=embed is not None)
        texts = plan.embed
        vectors = np.asarray(embed(texts), dtype=np.float32) if embed is not None and texts else None
        return self.finish(plan, vectors)
