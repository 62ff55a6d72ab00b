"""The one definition of each text concept, and every layer meaning the same thing by it."""

from __future__ import annotations

import asyncio

import pytest

from workbench.core.dataset import EvidenceSpan
from workbench.core.schema import GroundednessCheck
from workbench.core.spans import first_hit_rank, overlaps
from workbench.core.state import Chunk, RequestState
from workbench.core.text import (
    STOPWORDS,
    contains_phrase,
    content_words,
    is_abstention,
    normalize_answer,
    split_sentences,
    stem,
    structured_answer,
    words,
)
from workbench.evaluation.base import ScoreInput, Span
from workbench.evaluation.metrics.answer import Abstention
from workbench.evaluation.metrics.claims import ClaimSupport
from workbench.evaluation.metrics.retrieval import HitAtK
from workbench.guardrails import CheckContext, build_check
from workbench.models.extractive import rank_sentences
from workbench.models.generator import says_unknown
from workbench.retrieval import evidence_hit

# Each of these was missed by at least one of the three regexes the generator, the
# groundedness guard and the abstention metric used to have.
ABSTENTIONS = [
    "I don't know.",
    "i don\u2019t know",
    "I'm unable to answer that from the context.",
    "The passage doesn't say.",
    "There is not enough information in the context to answer.",
    "The sources do not mention who wrote it.",
    "It is not stated in the provided documents.",
    "I really don't know",
    "This cannot be determined from the text.",
    "",
]
ANSWERS = ["Rollo", "Known as Rollo", "Rollo knew the king.", "No, it was Rollo.", "The information desk in Paris."]
CHUNKS = (Chunk(chunk_id="c1", doc_id="d", text="Rollo swore fealty to King Charles III in 911.", start=0, end=46),)


def _guard_skips(answer: str) -> bool:
    config = GroundednessCheck(check="groundedness", threshold=0.5, action="flag")
    check = build_check(config, CheckContext(side="output", routes={}, embedder=None))
    return "abstains" in check.inspect(answer, RequestState(query="q", chunks=CHUNKS)).detail


def _metric_abstains(answer: str) -> bool:
    item = ScoreInput(question="q", answer=answer, contexts=[], answerable=False)
    return asyncio.run(Abstention().ascore(item)).value == 1.0


def _claims_skip(answer: str) -> bool:
    item = ScoreInput(question="q", answer=answer, contexts=[CHUNKS[0].text])
    return asyncio.run(ClaimSupport().ascore(item)).value is None


@pytest.mark.parametrize("answer", ABSTENTIONS)
def test_an_abstention_is_one_everywhere(answer: str) -> None:
    assert is_abstention(answer)
    assert says_unknown(answer)  # the pipeline's `abstained`
    assert _guard_skips(answer)
    assert _metric_abstains(answer)
    assert _claims_skip(answer)


@pytest.mark.parametrize("answer", ANSWERS)
def test_an_answer_is_an_answer_everywhere(answer: str) -> None:
    assert not is_abstention(answer)
    assert not says_unknown(answer)
    assert not _guard_skips(answer)
    assert not _metric_abstains(answer)
    assert not _claims_skip(answer)


def test_json_answers_abstain_by_their_fields() -> None:
    assert structured_answer({"answer": "", "found": False}) == ("", True)
    assert structured_answer({"answer": "I don't know", "found": True})[1]
    assert structured_answer({"answer": "Rollo", "found": True}) == ("Rollo.", False)
    assert structured_answer({"answer": 911}) == ("911.", False)  # a number is an answer
    assert says_unknown('{"answer": "", "found": false}', "json")
    assert not says_unknown('{"answer": "Rollo", "found": true}', "json")
    assert says_unknown("I don't know", "json")  # not JSON after all: read as prose


def test_sentences_split_at_ends_not_at_abbreviations() -> None:
    text = (
        'The U.S. Army landed in 1944. It reached No. 1 in the charts! Dr. Who asked "Why?" Then he left.\n\n'
        "A new paragraph\nwrapped by hand.\n- a list item"
    )
    assert split_sentences(text) == [
        "The U.S. Army landed in 1944.",
        "It reached No. 1 in the charts!",
        'Dr. Who asked "Why?"',
        "Then he left.",
        "A new paragraph\nwrapped by hand.",
        "- a list item",
    ]
    # knowledge_conflicts' Natural Questions text puts spaces before stops and quotes as ``.
    assert split_sentences("It is by Bono . `` Wino '' was a hit .") == ["It is by Bono .", "`` Wino '' was a hit ."]


def test_the_extractive_model_quotes_whole_sentences() -> None:
    ranked = rank_sentences("Where did the song reach No. 1?", ["The song reached No. 1 in the U.S. charts. It sold."])
    assert ranked[0][1] == "The song reached No. 1 in the U.S. charts."


def test_words_and_content_words() -> None:
    assert words("Fabrício paid $1,000 for 3.5 kg; don't!") == [
        "fabrício",
        "paid",
        "1000",
        "for",
        "3.5",
        "kg",
        "don",
        "t",
    ]
    assert content_words("According to the sources, the kings were founded in 1990s cities.") == [
        "king",
        "found",
        "1990s",
        "city",
    ]
    assert stem("founding") == stem("founded") == stem("found") == "found"
    assert stem("class") == "class" and stem("status") == "status"
    assert {"according", "sources", "context", "the", "who"} <= STOPWORDS
    # Content for claims, though BM25's longer list drops it as query filler.
    assert content_words("four new first") == ["four", "new", "first"]


def test_framing_words_need_no_support() -> None:
    """The guard and the metric use one stop-word list: framing does not count against."""
    context = "The tower was designed by Gustave Eiffel."
    answer = "According to the context, Gustave Eiffel designed it."
    item = ScoreInput(question="q", answer=answer, contexts=[context])
    assert asyncio.run(ClaimSupport().ascore(item)).value == 1.0
    config = GroundednessCheck(check="groundedness", threshold=0.99, action="flag")
    check = build_check(config, CheckContext(side="output", routes={}, embedder=None))
    chunk = Chunk(chunk_id="c", doc_id="d", text=context, start=0, end=len(context))
    assert check.inspect(answer, RequestState(query="q", chunks=(chunk,))).score == 1.0


@pytest.mark.parametrize(
    ("text", "phrase", "found"),
    [
        ("He was born in 1932.", "32", False),
        ("He was born in 1932.", "1932", True),
        ("Rollo led the Normans.", "the Normans", True),
        ("Rollo led the Normans.", "Normans led", False),
        ("Beyonc\u00e9\u2019s first album", "Beyonc\u00e9", True),
        ("Rollo's army", "Rollo", True),
        ("The war of 1914\u20131918", "1914", True),
        ("It was Beyonc\u00e9!", "beyonc\u00e9", True),
        ("The U.S. Army", "US army", True),
        ("anything", "", False),
        ("anything", "the", False),  # normalises to nothing
    ],
)
def test_contains_phrase_matches_whole_words(text: str, phrase: str, found: bool) -> None:
    assert contains_phrase(text, phrase) is found


def test_normalize_answer_is_squad_plus_unicode_punctuation() -> None:
    assert normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    assert normalize_answer("\u201cAn\u201d apple\u2026") == "apple"


def test_one_overlap_rule_for_retrieval_and_metrics() -> None:
    gold = [EvidenceSpan(doc_id="d1", start=100, end=110)]
    touching = Chunk(chunk_id="a", doc_id="d1", text="x" * 100, start=0, end=100)
    inside = Chunk(chunk_id="b", doc_id="d1", text="x" * 10, start=109, end=119)
    other = Chunk(chunk_id="c", doc_id="d2", text="x" * 10, start=100, end=110)
    assert not overlaps(touching, gold[0]) and overlaps(inside, gold[0]) and not overlaps(other, gold[0])
    assert first_hit_rank([other, touching, inside], gold) == 3
    for chunks in ([touching], [inside], [other, inside]):
        item = ScoreInput(
            question="q",
            answer="a",
            contexts=["c"],
            retrieved=[Span(doc_id=c.doc_id, start=c.start, end=c.end) for c in chunks],
            evidence=[Span(doc_id="d1", start=100, end=110)],
        )
        assert asyncio.run(HitAtK(k=5).ascore(item)).value == float(evidence_hit(chunks, gold))
