"""A deterministic, model-free baseline: answer with the best-supported retrieved sentence."""

from __future__ import annotations

import math
import re
from collections import Counter

from workbench.core.protocols import Completion, GenerationRequest
from workbench.core.schema import ExtractiveEndpoint
from workbench.core.tokens import estimate_tokens

ABSTAIN_TEXT = "I don't know"

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORD_TEXT = """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me more most my
    myself no nor not now of off on once only or other our ours out over own same she should so some such
    than that the their theirs them themselves then there these they this those through to too under until
    up very was we were what when where which while who whom why will with would you your yours
    yourself yourselves name named called"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def content_words(text: str) -> set[str]:
    """Lower-cased words minus stopwords, with a light plural strip so `years` meets `year`."""
    words = set()
    for word in _WORD.findall(text.lower()):
        if word in _STOPWORDS:
            continue
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        words.add(word)
    return words


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def rank_sentences(question: str, passages: list[str]) -> list[tuple[float, str]]:
    """Every sentence with its support in [0, 1]: the IDF-weighted share of the question's
    content words it contains. Best first; ties keep passage order (retrieval rank)."""
    sentences = [s for p in passages for s in split_sentences(p)]
    if not sentences:
        return []
    bags = [content_words(s) for s in sentences]
    df = Counter(w for bag in bags for w in bag)
    n = len(sentences)
    query = content_words(question)
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
    abstains with "I don't know" when the best one covers less than `min_support` of it."""

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
