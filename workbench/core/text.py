"""The one definition of each text concept the layers share.

The pipeline, the guards and the metrics must agree on what they are looking at, so each of
these exists once, here:

- **words**: `words` (lower-cased word tokens; numbers keep their decimal and thousands marks)
  and `content_words` (words minus `STOPWORDS` and single letters, lightly stemmed). Used to
  measure how much of one text another supports: the groundedness guard, `claim_support`,
  the extractive model's sentence ranking.
- **sentences**: `split_sentences`.
- **abstention**: `is_abstention` ("I don't know"-style answers; an empty answer too) and
  `structured_answer` for JSON answers; `ABSTAIN_TEXT` is what the workbench itself says.
- **answer matching**: `normalize_answer` (SQuAD normalisation, for exact match and token F1),
  `answer_tokens` and `contains_phrase` (a normalised phrase on word boundaries: "32" is not
  in "1932").

BM25 keeps its own, much longer stop-word list (`retrieval/_stopwords.py`): it removes query
filler such as "actually" or "know", which would be content here.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence

__all__ = [
    "ABSTAIN_TEXT",
    "STOPWORDS",
    "answer_tokens",
    "contains_phrase",
    "content_words",
    "is_abstention",
    "normalize_answer",
    "split_sentences",
    "stem",
    "structured_answer",
    "words",
]

ABSTAIN_TEXT = "I don't know."

# --- words -----------------------------------------------------------------------------------

# A run of letters/digits; a number keeps internal "." and "," ("3.5", "1,000").
_WORD = re.compile(r"[^\W_]+(?:[.,]\d+)*")

# English function words, plus the words an answer uses to frame itself ("according to the
# sources", "the answer is"), which carry no claim about the world.
STOPWORDS: frozenset[str] = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing don down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just me
    may might more most must my myself no nor not now of off on once only or other our ours ourselves
    out over own same shall she should so some such than that the their theirs them themselves then
    there these they this those through to too under until up us very was we were what when where
    which while who whom whose why will with would you your yours yourself yourselves s t d ll m re ve
    according answer answers based context contexts document documents passage passages provided
    question questions source sources retrieved mentioned say says said name named called
    """.split()  # noqa: SIM905 - one readable block of words
)


def words(text: str, *, keep_case: bool = False) -> list[str]:
    """Word tokens in order, lower-cased unless `keep_case`; "1,000" becomes "1000", "don't"
    becomes "don", "t"."""
    return [w.replace(",", "") for w in _WORD.findall(text if keep_case else text.lower())]


def stem(word: str) -> str:
    """Light suffix folding so "kings" meets "king" and "founded" meets "founding"; the stem
    keeps at least three letters, and words with digits ("1990s") stay as they are."""
    if any(c.isdigit() for c in word):
        return word
    if word.endswith("ies") and len(word) >= 6:
        word = word[:-3] + "y"
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) >= 4:
        word = word[:-1]
    if word.endswith("ied") and len(word) >= 6:
        return word[:-3] + "y"
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> list[str]:
    """Stemmed `words` without stop words and single letters (single digits stay), in order."""
    return [stem(w) for w in words(text) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


# --- sentences -------------------------------------------------------------------------------

# A sentence ends at . ! or ? followed by space and a capital, digit or opening quote/bracket;
# not after a single capital ("U.S.", "J. R.") or a common abbreviation ("No. 1", "Dr. Who").
_ABBREVIATIONS = ("Mr", "Mrs", "Ms", "Dr", "St", "No", "Nos", "Jr", "Sr", "vs", "Vol", "Fig", "Gen", "Col", "Lt", "Mt")
_NOT_AFTER = "".join(rf"(?<!\b{a}\.)" for a in _ABBREVIATIONS) + r"(?<!\b[A-Z]\.)"
_SENTENCE_BREAK = re.compile(
    rf"(?:{_NOT_AFTER}(?<=[.!?])|(?<=[.!?][\"'”’)\]]))\s+(?=(?:[\"'“‘`(\[]+\s?)?[A-Z0-9])"
    r"|\n[ \t]*\n\s*"  # a blank line
    r"|\n[ \t]*(?=[-*•#]|\d+[.)]\s)"  # a new list item or heading
)


def split_sentences(text: str) -> list[str]:
    """Sentences of `text`, stripped, empty ones dropped. A single line break inside a
    paragraph (hard-wrapped text) does not end a sentence; a blank line or a list item does."""
    return [s.strip() for s in _SENTENCE_BREAK.split(text) if s and s.strip()]


# --- abstention ------------------------------------------------------------------------------

_PLACE = r"(?:the\s+)?(?:given\s+|provided\s+|retrieved\s+)?(?:context|passages?|text|sources?|documents?|information)"
_CANNOT = (
    r"i(?:\s+(?:really\s+|simply\s+|just\s+)?(?:do\s*n[o']?t|cannot|can'?t|can\s+not|have\s+no\s+way\s+to"
    r"|am\s+(?:not\s+able|unable)\s+to)|'m\s+(?:not\s+able|unable)\s+to)"
    r"\s+(?:really\s+|actually\s+)?(?:know|say|answer|tell|find|determine)"
)
_ABSTAIN = re.compile(
    r"\b(?:" + _CANNOT + r"|i\s+have\s+no\s+idea|unable\s+to\s+(?:answer|determine|find|tell|say)"
    r"|(?:no|not\s+(?:enough|sufficient)|insufficient)\s+(?:relevant\s+)?information"
    r"|no\s+answer\s+(?:in|from|is\s+given|provided)|unanswerable"
    r"|can(?:not|'?t|\s+not)\s+be\s+(?:answered|determined|found)"
    r"|not\s+(?:mentioned|stated|provided|found|given|specified|included)\s+in\s+"
    + _PLACE
    + r"|"
    + _PLACE
    + r"\s+(?:does|do|did)\s*n[o']?t\s+(?:say|contain|mention|provide|specify|state|include|answer|give)"
    r")\b"
)


def is_abstention(text: str) -> bool:
    """Whether an answer declines to answer ("I don't know", "The context does not say"). An
    empty answer abstains too: it claims nothing. The one definition used by the generator's
    `abstained`, the groundedness guard and the abstention metric."""
    folded = " ".join(text.replace("\u2019", "'").lower().split())
    return not folded or bool(_ABSTAIN.search(folded))


def _json_strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, int | float):
        return [str(value)]
    items = value.values() if isinstance(value, Mapping) else value if isinstance(value, Sequence) else ()
    return [s for item in items for s in _json_strings(item)]


def structured_answer(value: object) -> tuple[str, bool]:
    """The prose of a parsed JSON answer (its string and number fields, as sentences) and
    whether it abstains: an object with `"found": false`, or prose that `is_abstention`."""
    parts = [s.strip() for s in _json_strings(value) if s.strip()]
    prose = " ".join(p if p[-1] in ".!?" else p + "." for p in parts)
    said_not_found = isinstance(value, Mapping) and value.get("found") is False
    return prose, said_not_found or is_abstention(prose)


# --- answer matching -------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")


def _drop_punctuation(text: str) -> str:
    return "".join(ch for ch in text if not unicodedata.category(ch).startswith("P"))


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, drop punctuation (any Unicode punctuation, not only
    ASCII) and articles, collapse whitespace."""
    text = _ARTICLES.sub(" ", _drop_punctuation(text.lower()))
    return " ".join(text.split())


def answer_tokens(text: str) -> list[str]:
    return normalize_answer(text).split()


# For matching a phrase, a possessive "'s" and the dashes and slashes that join words
# ("1914-1918", "Rollo's") separate words instead of gluing them.
_POSSESSIVE = re.compile(r"(?<=[^\W_])['\u2019]s\b")
_JOINERS = re.compile(r"[/\u2010-\u2015\u2212-]")


def contains_phrase(text: str, phrase: str) -> bool:
    """Whether `phrase` occurs in `text` as whole words after `normalize_answer`: "32" is not in
    "1932", "the Normans" is in "Rollo led the Normans."; "Rollo" is in "Rollo's army" and
    "1914" in "1914-1918". An empty phrase is in nothing."""

    def tokens(value: str) -> list[str]:
        return answer_tokens(_JOINERS.sub(" ", _POSSESSIVE.sub(" ", value)))

    needle, haystack = tokens(phrase), tokens(text)
    if not needle:
        return False
    n = len(needle)
    return any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))
