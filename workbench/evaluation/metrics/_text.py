"""Text helpers shared by the offline metrics: SQuAD normalisation, content tokens, sentence
splitting and abstention detection."""

from __future__ import annotations

import re
import string

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)
_WORD = re.compile(r"[a-z0-9]+")
# Split after . ! ? ; followed by space, keeping abbreviations like "U.S." mostly intact.
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+(?=[A-Z0-9`'\"(])|\n+")

_STOPWORDS_TEXT = """
a an the and or but if of at by for with about against between into through during before after
above below to from up down in out on off over under again further then once here there when
where why how all any both each few more most other some such no nor not only own same so than
too very s t can will just don should now is am are was were be been being have has had having
do does did doing it its itself he him his she her hers they them their theirs we us our you
your yours i me my this that these those what which who whom as also would could may might must
shall
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())

_ABSTAIN = re.compile(
    r"\b(i\s+(do\s*n[o']?t|cannot|can't|am\s+not\s+able\s+to)\s+(know|say|answer|tell|find|determine)"
    r"|not\s+(enough|sufficient)\s+information|no\s+(relevant\s+)?information|unanswerable"
    r"|cannot\s+be\s+(answered|determined)|(is\s+)?not\s+(mentioned|stated|provided)\s+in\s+the\s+context)\b"
)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, drop punctuation and articles, collapse whitespace."""
    text = text.lower().translate(_PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def answer_tokens(text: str) -> list[str]:
    return normalize_answer(text).split()


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def content_tokens(text: str) -> list[str]:
    """Lower-cased words without stop words; all words if only stop words are left."""
    all_words = words(text)
    content = [w for w in all_words if w not in STOPWORDS]
    return content or all_words


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def looks_like_abstention(answer: str) -> bool:
    """An "I don't know"-style answer (also an empty one)."""
    text = " ".join(answer.lower().split())
    return not text or bool(_ABSTAIN.search(text))
