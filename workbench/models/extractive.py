"""A deterministic, model-free baseline: answer with the best-supported retrieved sentence."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import AsyncIterator

from workbench.core.protocols import Completion, GenerationRequest
from workbench.core.schema import ExtractiveEndpoint
from workbench.core.text import ABSTAIN_TEXT, content_words, split_sentences
from workbench.core.tokens import estimate_tokens

__all__ = ["ABSTAIN_TEXT", "ExtractiveModel", "rank_sentences"]


def rank_sentences(question: str, passages: list[str]) -> list[tuple[float, str]]:
    """Every sentence with its support in [0, 1]: the IDF-weighted share of the question's
    content words it contains. Best first; ties keep passage order (retrieval rank)."""
    sentences = [s for p in passages for s in split_sentences(p)]
    if not sentences:
        return []
    bags = [set(content_words(s)) for s in sentences]
    df = Counter(w for bag in bags for w in bag)
    n = len(sentences)
    query = set(content_words(question))
    # A question word absent from every sentence keeps the highest weight: missing evidence
    # should pull support down, not vanish from the denominator.
    weight = {w: math.log((n + 1) / (df.get(w, 0) + 0.5)) for w in query}
    total = sum(weight.values())
    if total <= 0:
        return []
    scored = [(sum(weight[w] for w in query & bag) / total, i) for i, bag in enumerate(bags)]
    scored.sort(key=lambda t: (-t[0], t[1]))
    return [(score, sentences[i]) for score, i in scored]


class ExtractiveModel:
    """A `ChatModel` that quotes the retrieved sentence(s) sharing most with the question, and
    abstains with `ABSTAIN_TEXT` when the best one covers less than `min_support` of it."""

    def __init__(self, config: ExtractiveEndpoint) -> None:
        self.config = config

    def complete(self, request: GenerationRequest) -> Completion:
        passages = [c.text for c in request.chunks]
        ranked = rank_sentences(request.question, passages)
        chosen = [s for score, s in ranked[: self.config.max_sentences] if score >= self.config.min_support]
        abstained = not chosen
        text = ABSTAIN_TEXT if abstained else " ".join(chosen)
        return Completion(
            text=text,
            tokens_in=estimate_tokens(request.question) + sum(estimate_tokens(p) for p in passages),
            tokens_out=estimate_tokens(text),
            model="extractive",
            abstained=abstained,
        )

    async def acomplete(self, request: GenerationRequest) -> Completion:
        return self.complete(request)

    async def astream(self, request: GenerationRequest) -> AsyncIterator[str | Completion]:
        """The whole answer as one piece: it is chosen, not generated."""
        completion = self.complete(request)
        yield completion.text
        yield completion
