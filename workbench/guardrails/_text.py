"""Small text helpers for the lexical groundedness check."""

from __future__ import annotations

import re

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_TOKEN = re.compile(r"[a-z0-9]+(?:['.,][a-z0-9]+)*")

_STOPWORDS = """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having
    he her here hers herself him himself his how i if in into is it its itself just me more most my myself no
    nor not of off on once only or other our ours ourselves out over own same she should so some such than that
    the their theirs them themselves then there these they this those through to too under until up very was we
    were what when where which while who whom why will with would you your yours yourself yourselves also
    answer context question according based given say says said one """
STOPWORDS = frozenset(_STOPWORDS.split())

_ABSTAIN = re.compile(
    r"\b(?:i\s+(?:do\s+not|don'?t|cannot|can'?t)\s+(?:know|tell|answer|find)|"
    r"(?:not|no)\s+(?:enough\s+)?(?:information|answer)\s+(?:in|from|is\s+given\s+in|provided)|"
    r"(?:the\s+)?context\s+does\s+not\s+(?:contain|say|mention|provide)|unable\s+to\s+(?:answer|determine|find)|"
    r"cannot\s+be\s+(?:answered|determined))\b",
    re.IGNORECASE,
)


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text.strip()) if s.strip()]


def _stem(token: str) -> str:
    # Crude plural/inflection folding so "kings" supports "king"; enough for overlap.
    for suffix in ("ies", "es", "s", "ed", "ing"):
        if token.endswith(suffix) and len(token) - len(suffix) >= 3:
            return token[: -len(suffix)]
    return token


def content_tokens(text: str) -> set[str]:
    """Lower-cased, stemmed tokens with stopwords and one-letter words removed; numbers kept."""
    tokens = _TOKEN.findall(text.lower())
    return {_stem(t.replace(",", "")) for t in tokens if t not in STOPWORDS and (len(t) > 1 or t.isdigit())}


def is_abstention(text: str) -> bool:
    return bool(_ABSTAIN.search(text))
