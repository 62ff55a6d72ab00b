import numpy as np
import pytest

from workbench.core.claims import ClaimScorer, claims_of, context_sentences
from workbench.testing.embedders import HashingEmbedder

CONTEXT = [
    "Rollo, a Viking leader, agreed to swear fealty to King Charles III of West Francia in 911. "
    "The Normans gave their name to Normandy."
]


def test_claims_are_reduced_to_what_they_add_to_the_question():
    claims = claims_of("According to the sources, Rollo founded Normandy. It was in 911.", "Who founded Normandy?")
    assert [sorted(c.words) for c in claims] == [["rollo"], ["911"]]
    assert claims[0].text == "Rollo"


def test_when_every_sentence_restates_the_question_the_sentences_are_the_claims():
    claims = claims_of("Rollo founded Normandy.", "Did Rollo found Normandy?")
    assert len(claims) == 1 and claims[0].words == frozenset({"rollo", "found", "normandy"})


def test_lexical_scores_support_and_unsupported_claims():
    scorer = ClaimScorer()
    claims = claims_of("Rollo swore fealty to Charles III. The Normans invented the printing press.")
    scores = scorer.score(claims, context_sentences(CONTEXT))
    assert scores.support[0] == pytest.approx(4 / 5)  # "swore" is not "swear"
    assert scores.support[1] == pytest.approx(1 / 4)  # only "normans"
    assert scores.score == pytest.approx((4 / 5 + 1 / 4) / 2)
    assert not scores.semantic.any()


def test_embeddings_only_for_open_claims_and_never_lower_the_support():
    scorer = ClaimScorer()
    embedder = HashingEmbedder(256)
    asked: list[list[str]] = []

    def embed(texts: list[str]) -> np.ndarray:
        asked.append(texts)
        return embedder.embed(texts)

    claims = claims_of("The Normans gave their name to Normandy. Rollo invented the telescope.")
    sentences = context_sentences(CONTEXT)
    lexical = scorer.score(claims, sentences)
    both = scorer.score(claims, sentences, embed)
    assert asked == [["Rollo invented the telescope.", *sentences]]  # the first claim is fully supported
    assert (both.support >= lexical.support).all() and both.support[0] == 1.0


def test_binary_scoring_counts_claims_past_either_threshold():
    scorer = ClaimScorer(graded=False)
    claims = claims_of("Rollo swore fealty to Charles III. The Normans invented the printing press.")
    assert scorer.score(claims, context_sentences(CONTEXT)).score == 0.5
