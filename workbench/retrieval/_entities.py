"""Offline heuristic entity and relation extraction, with character offsets into chunk text.

No model: spaCy runs here only with a blank pipeline and no packaged English NER model installs
from PyPI, so entities are spans the text marks itself:

- names: runs of capitalised words, joined across lower-case name particles ("University of
  Cambridge", "Ludwig van Beethoven"); a leading sentence word such as "In" or "The" is dropped;
- acronyms: all-capital tokens ("NASA", "UEFA");
- dates: "4 September 1981", "September 4, 1981", "1981".

Relations, each pointing at the span of text that states it:

- `mentions`: the document's subject (its title) -> every other entity in the document;
- the words between two neighbouring entities of one sentence, when short ("founded", "is the
  capital of", "of"): a cheap subject-verb-object / "X of Y" / appositive pattern; a bare comma
  between them is recorded as `appos`.

`normalise` is the one definition of an entity key, used at ingest and when linking a query.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from workbench.core.text import split_sentences

EXTRACTOR_VERSION = "heuristic-1"

_PARTICLES = r"(?:of|the|de|del|della|da|di|du|des|la|le|von|van|der|den|y|al|bin|ibn|and the)"
_CAP_WORD = r"(?:[A-Z][\w'’\-]*\.?|[A-Z]\.)"
_MONTHS = (
    "January|February|March|April|May|June|July|August|September|October|November|December"
    "|Jan\\.?|Feb\\.?|Mar\\.?|Apr\\.?|Jun\\.?|Jul\\.?|Aug\\.?|Sep\\.?|Sept\\.?|Oct\\.?|Nov\\.?|Dec\\.?"
)
_DATE = re.compile(
    rf"\b(?:\d{{1,2}}\s+(?:{_MONTHS})\s*,?\s*\d{{4}}|(?:{_MONTHS})\s+\d{{1,2}}\s*,\s*\d{{4}}"
    rf"|(?:{_MONTHS})\s+\d{{4}}|(?:1[0-9]|20)\d{{2}}s?)\b"
)
_NAME = re.compile(rf"\b{_CAP_WORD}(?:\s+(?:{_PARTICLES}\s+)*{_CAP_WORD})*")
# Capitalised only because they start a sentence, or too general to name anything.
_NOT_NAMES = frozenset(
    """a an the this that these those it its he she his her they their them we our you your i in on at
    by for from with as of to and or but if when while after before during since until although though
    however also there here what which who whom whose where why how all some many most several such
    one two three four five six seven eight nine ten first second third no not yes is are was were be
    been being has have had do does did can could may might must shall should will would both each
    either neither other another following according despite due like unlike under over between
    among within without about above below near throughout january february march april may june
    july august september october november december monday tuesday wednesday thursday friday
    saturday sunday mr mrs ms dr st""".split()  # noqa: SIM905 - one readable block of words
)
MAX_GAP_WORDS = 6
_ARTICLES = frozenset({"a", "an", "the"})


@dataclass(frozen=True)
class Entity:
    """One mention: `text == chunk_text[start:end]`; `key` links mentions of the same thing."""

    start: int
    end: int
    text: str
    key: str
    kind: str  # name | acronym | date


@dataclass(frozen=True)
class Relation:
    """`head_key --relation--> tail_key`, stated by `chunk_text[start:end]`."""

    head_key: str
    relation: str
    tail_key: str
    start: int
    end: int


def normalise(text: str) -> str:
    """The entity key: accents folded, lower case, punctuation to spaces, a leading "the" and a
    trailing possessive dropped ("The Beatles'" and "beatles" are one key)."""
    folded = unicodedata.normalize("NFKD", text)
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch)).lower()
    folded = re.sub(r"['’]s\b", "", folded)
    words = re.sub(r"[^\w]+", " ", folded).split()
    if words and words[0] == "the":
        words = words[1:]
    return " ".join(words)


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Drop leading sentence words and trailing particles/periods from a capitalised run."""
    span = text[start:end]
    words = list(re.finditer(r"\S+", span))
    while words and words[0].group().lower().strip(".") in _NOT_NAMES:
        words.pop(0)
    while words and (re.fullmatch(_PARTICLES, words[-1].group()) or words[-1].group().lower() in _NOT_NAMES):
        words.pop()
    if not words:
        return start, start
    s, e = start + words[0].start(), start + words[-1].end()
    if text[e - 1] == "." and not re.search(r"(?:\b[A-Z]\.|\.[A-Z]\.)$", text[s:e]):
        e -= 1  # a sentence's full stop, not an initial ("J. R. R.")
    return s, e


def sentence_spans(text: str) -> Iterator[tuple[int, int]]:
    """[start, end) of each sentence of `text` (`core.text.split_sentences`, located in it)."""
    offset = 0
    for sentence in split_sentences(text):
        start = text.find(sentence, offset)
        if start < 0:
            continue
        offset = start + len(sentence)
        yield start, offset


def _names(text: str) -> Iterator[tuple[int, int]]:
    # Sentence by sentence: "... France. J. R. R. Tolkien" is two names, not one.
    for s0, s1 in sentence_spans(text):
        for m in _NAME.finditer(text, s0, s1):
            yield m.start(), m.end()


def _mentions(text: str) -> Iterator[Entity]:
    dates = [(m.start(), m.end()) for m in _DATE.finditer(text)]
    for s, e in dates:
        yield Entity(s, e, text[s:e], normalise(text[s:e]), "date")
    for m_start, m_end in _names(text):
        s, e = _trim(text, m_start, m_end)
        if e - s < 2 or any(ds < e and s < de for ds, de in dates):
            continue
        key = normalise(text[s:e])
        if not key or key in _NOT_NAMES or key.isdigit():
            continue
        kind = "acronym" if text[s:e].isupper() and " " not in text[s:e] else "name"
        yield Entity(s, e, text[s:e], key, kind)


def _relation_of(gap: str) -> str | None:
    words = re.sub(r"[^\w\s,]", " ", gap).replace(",", " , ").split()
    if not words:
        return "appos" if "," in gap else None
    if any(ch in gap for ch in ';:()[]"') or len(words) > MAX_GAP_WORDS:
        return None
    words = [w.lower() for w in words if w != ","]
    while words and words[-1] in _ARTICLES:
        words.pop()  # "wrote the" -> "wrote": the article belongs to the tail's name
    return " ".join(words) if words else "appos"


class HeuristicExtractor:
    """Entities and relations of one chunk, from patterns alone (see the module docstring)."""

    name = "heuristic"

    def fingerprint(self) -> dict[str, str]:
        return {"extractor": self.name, "v": EXTRACTOR_VERSION}

    def entities(self, text: str) -> list[Entity]:
        return sorted(_mentions(text), key=lambda m: (m.start, m.end))

    def extract(self, text: str, subject: str | None = None) -> tuple[list[Entity], list[Relation]]:
        """Entities of `text` and the relations between them; `subject` is the key of what the
        document is about (its normalised title), the head of its `mentions` relations."""
        found = self.entities(text)
        relations: list[Relation] = []
        for ent in found:
            if subject and ent.key != subject and ent.kind != "date":
                relations.append(Relation(subject, "mentions", ent.key, ent.start, ent.end))
        for s0, s1 in sentence_spans(text):
            inside = [m for m in found if s0 <= m.start and m.end <= s1]
            for head, tail in zip(inside, inside[1:], strict=False):
                if head.key == tail.key or head.end > tail.start:
                    continue
                label = _relation_of(text[head.end : tail.start])
                if label is not None:
                    relations.append(Relation(head.key, label, tail.key, head.start, tail.end))
        return found, relations
