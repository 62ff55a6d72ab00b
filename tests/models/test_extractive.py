from workbench.core.protocols import GenerationRequest
from workbench.core.schema import ExtractiveEndpoint
from workbench.core.state import Chunk
from workbench.core.text import is_abstention
from workbench.models.extractive import ABSTAIN_TEXT, ExtractiveModel, rank_sentences, split_sentences


def chunk(i: int, text: str) -> Chunk:
    return Chunk(chunk_id=f"c{i}", doc_id="d", text=text, start=0, end=len(text))


CHUNKS = (
    chunk(1, "The Normans were a people in France. Their duke was Rollo. They spoke Norman French."),
    chunk(2, "Normandy was granted to Rollo in 911 by King Charles III. The region lies in northern France."),
)


def model(**kw) -> ExtractiveModel:
    return ExtractiveModel(ExtractiveEndpoint(provider="extractive", **kw))


def test_split_sentences_keeps_abbreviation_free_sentences_apart():
    assert split_sentences("One thing. Two things! Three? 4 more.") == [
        "One thing.",
        "Two things!",
        "Three?",
        "4 more.",
    ]


def test_picks_the_sentence_that_answers_the_question():
    out = model(min_support=0.3).complete(
        GenerationRequest(question="In what year was Normandy granted to Rollo?", chunks=CHUNKS)
    )
    assert out.text == "Normandy was granted to Rollo in 911 by King Charles III."
    assert not out.abstained
    assert out.model == "extractive"
    assert out.tokens_in > out.tokens_out > 0


def test_rare_words_weigh_more_than_common_ones():
    ranked = rank_sentences("Who granted Normandy?", [c.text for c in CHUNKS])
    assert ranked[0][1].startswith("Normandy was granted")
    assert 0 < ranked[0][0] <= 1
    assert [s for s, _ in ranked] == sorted((s for s, _ in ranked), reverse=True)


def test_abstains_below_min_support():
    out = model(min_support=0.25).complete(
        GenerationRequest(question="What is the boiling point of mercury in kelvin?", chunks=CHUNKS)
    )
    assert out.abstained
    assert out.text == ABSTAIN_TEXT


def test_abstains_without_chunks():
    out = model().complete(GenerationRequest(question="Who was Rollo?"))
    assert out.abstained and out.text == ABSTAIN_TEXT


def test_max_sentences_returns_several_in_rank_order():
    out = model(min_support=0.1, max_sentences=2).complete(
        GenerationRequest(question="Rollo Normandy France", chunks=CHUNKS)
    )
    first, second = rank_sentences("Rollo Normandy France", [c.text for c in CHUNKS])[:2]
    assert out.text == f"{first[1]} {second[1]}"


async def test_async_matches_sync():
    req = GenerationRequest(question="Who was the duke of the Normans?", chunks=CHUNKS)
    m = model()
    assert await m.acomplete(req) == m.complete(req)
    assert m.complete(req).text == "Their duke was Rollo."


def test_its_abstention_reads_as_one_everywhere():
    out = model().complete(GenerationRequest(question="Who was Rollo?"))
    assert is_abstention(out.text)


def test_ranks_whole_sentences_of_natural_questions_text():
    passage = "`` Wino '' is a song by Bono . It reached No. 1 in the U.S. in 1982 ."
    ranked = rank_sentences("When did wino reach number 1?", [passage])
    assert [s for _, s in ranked] == ["It reached No. 1 in the U.S. in 1982 .", "`` Wino '' is a song by Bono ."]
