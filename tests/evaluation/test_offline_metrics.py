"""Offline metrics: exact values on hand-made rows, and the registry's errors."""

from __future__ import annotations

import asyncio
import math

import pytest

from workbench.core.errors import ConfigError
from workbench.evaluation.base import Metric, ScoreInput, Span
from workbench.evaluation.metrics import DEFAULT_METRICS, JUDGED_METRICS, build_metrics, metric_registry
from workbench.evaluation.metrics.answer import Abstention, ExactMatch, TokenF1
from workbench.evaluation.metrics.claims import ClaimSupport
from workbench.evaluation.metrics.embedding import QaRelevance
from workbench.evaluation.metrics.retrieval import MRR, HitAtK, NDCGAtK, RecallAtK
from workbench.testing.embedders import HashingEmbedder


def run(metric: Metric, item: ScoreInput) -> float | None:
    result = asyncio.run(metric.ascore(item))
    assert not result.failed, result.error
    return result.value


def row(**kw: object) -> ScoreInput:
    base: dict[str, object] = {"question": "q?", "answer": "a", "contexts": ["c"]}
    return ScoreInput.model_validate(base | kw)


def spans(*triples: tuple[str, int, int]) -> list[Span]:
    return [Span(doc_id=d, start=s, end=e) for d, s, e in triples]


# Gold: d1[100, 120) and d2[0, 10). Retrieved in rank order: a miss (other doc, overlapping
# offsets), a touch-but-no-overlap of d1, a hit on d1, a second hit on d1, then a hit on d2.
GOLD = spans(("d1", 100, 120), ("d2", 0, 10))
RETRIEVED = spans(("d9", 100, 120), ("d1", 80, 100), ("d1", 110, 130), ("d1", 90, 105), ("d2", 5, 50))
RANKED = row(retrieved=RETRIEVED, evidence=GOLD)


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        (HitAtK(k=1), 0.0),
        (HitAtK(k=2), 0.0),
        (HitAtK(k=3), 1.0),
        (RecallAtK(k=3), 0.5),
        (RecallAtK(k=4), 0.5),
        (RecallAtK(k=5), 1.0),
        (MRR(), 1 / 3),
        (MRR(k=2), 0.0),
        # ndcg@5: new gold spans at ranks 3 and 5; ideal ranks 1 and 2.
        (NDCGAtK(k=5), (1 / math.log2(4) + 1 / math.log2(6)) / (1 + 1 / math.log2(3))),
        (NDCGAtK(k=3), (1 / math.log2(4)) / (1 + 1 / math.log2(3))),
    ],
)
def test_retrieval_metrics_exact_values(metric: Metric, expected: float) -> None:
    assert run(metric, RANKED) == pytest.approx(expected)


def test_one_span_covering_every_gold_span_is_a_perfect_ranking() -> None:
    item = row(retrieved=spans(("d1", 0, 500)), evidence=spans(("d1", 10, 20), ("d1", 300, 310)))
    assert run(NDCGAtK(k=5), item) == 1.0
    assert run(RecallAtK(k=1), item) == 1.0


def test_nothing_retrieved_scores_zero() -> None:
    item = row(retrieved=[], evidence=GOLD)
    assert [run(m, item) for m in (HitAtK(), RecallAtK(), MRR(), NDCGAtK())] == [0.0, 0.0, 0.0, 0.0]


def test_k_must_be_positive() -> None:
    with pytest.raises(ValueError):
        HitAtK(k=0)


@pytest.mark.parametrize(
    ("answer", "reference", "em", "f1"),
    [
        ("The Eiffel Tower!", "eiffel tower", 1.0, 1.0),
        ("in 1889", "1889", 0.0, 2 * (0.5 * 1.0) / 1.5),
        ("Paris, France", "Lyon", 0.0, 0.0),
        ("the cat the cat", "cat", 0.0, 2 * (0.5 * 1.0) / 1.5),
        ("a", "the", 1.0, 1.0),  # both normalise to nothing
    ],
)
def test_exact_match_and_token_f1(answer: str, reference: str, em: float, f1: float) -> None:
    item = row(answer=answer, reference=reference)
    assert run(ExactMatch(), item) == em
    assert run(TokenF1(), item) == pytest.approx(f1)


@pytest.mark.parametrize(
    ("answerable", "abstained", "answer", "expected"),
    [
        (True, False, "Paris", 1.0),
        (True, True, "Paris", 0.0),
        (False, True, "Paris", 1.0),
        (False, None, "I don't know.", 1.0),  # detected from the answer
        (False, None, "Paris", 0.0),
        (True, None, "The context does not say; I cannot answer that.", 0.0),
    ],
)
def test_abstention(answerable: bool, abstained: bool | None, answer: str, expected: float) -> None:
    assert run(Abstention(), row(answer=answer, answerable=answerable, abstained=abstained)) == expected


CONTEXT = "The tower was designed by Gustave Eiffel. It opened in 1889 in Paris. It is 330 metres tall."


def test_claim_support_lexical_only() -> None:
    metric = ClaimSupport()
    assert run(metric, row(answer="Gustave Eiffel designed it.", contexts=[CONTEXT])) == 1.0
    # one of two claims supported
    assert run(metric, row(answer="It opened in 1889. It was painted green.", contexts=[CONTEXT])) == 0.5
    assert run(metric, row(answer="Alexandre Dumas", contexts=[CONTEXT])) == 0.0
    assert run(metric, row(answer="Eiffel", contexts=[])) == 0.0


QUESTION = "Who designed the tower that opened in 1889?"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Gustave Eiffel", 1.0),
        ("According to the sources, the tower that opened in 1889 was designed by Gustave Eiffel.", 1.0),
        ("Alexandre Dumas", 0.0),
        # Copying the question earns nothing: only "Alexandre Dumas" is claimed. (Before claims
        # were scored, the copied words "tower", "opened", "1889" gave this 0.6.)
        ("According to the sources, the tower that opened in 1889 was designed by Alexandre Dumas.", 0.0),
        # A sentence that only restates the question is not a claim; the other sentence is.
        ("The tower opened in 1889. Alexandre Dumas designed it.", 0.0),
    ],
)
def test_claim_support_scores_what_the_answer_adds_to_the_question(answer: str, expected: float) -> None:
    assert run(ClaimSupport(), row(question=QUESTION, answer=answer, contexts=[CONTEXT])) == expected


def test_claim_support_scores_a_pure_restatement_whole() -> None:
    # Nothing beyond the question is claimed: the sentence itself is checked.
    item = row(question="Did it open in 1889?", answer="It opened in 1889.", contexts=[CONTEXT])
    assert run(ClaimSupport(), item) == 1.0
    item = row(question="Did it open in 1920?", answer="It opened in 1920.", contexts=[CONTEXT])
    assert run(ClaimSupport(), item) == 0.5


def test_claim_support_embeds_only_the_new_words() -> None:
    embedder = HashingEmbedder(128)
    item = row(
        question=QUESTION, answer="The tower that opened in 1889 was designed by a Frenchman.", contexts=[CONTEXT]
    )
    run(ClaimSupport(embedder), item)
    assert embedder.batches[0][0] == "Frenchman"


def test_claim_support_skips_abstentions() -> None:
    result = asyncio.run(ClaimSupport().ascore(row(answer="I don't know", contexts=[CONTEXT])))
    assert result.value is None and not result.failed


def test_claim_support_embeds_only_what_words_do_not_support() -> None:
    embedder = HashingEmbedder(128)
    metric = ClaimSupport(embedder)
    assert run(metric, row(answer="Gustave Eiffel designed it.", contexts=[CONTEXT])) == 1.0
    assert embedder.texts == 0
    supported = run(metric, row(answer="Paris tower 1889 opened", contexts=[CONTEXT]))
    contradicted = run(metric, row(answer="Berlin castle 1920 closed", contexts=[CONTEXT]))
    assert supported is not None and contradicted is not None and supported > contradicted
    assert embedder.texts > 0


def test_qa_relevance_is_the_cosine() -> None:
    metric = QaRelevance(HashingEmbedder(128))
    assert run(metric, row(question="eiffel tower height", answer="eiffel tower height")) == pytest.approx(1.0)
    assert run(metric, row(question="eiffel tower", answer="banana")) == pytest.approx(0.0, abs=1e-6)


def test_ragas_builtin_metrics_score_through_ragas() -> None:
    pytest.importorskip("rapidfuzz")
    pytest.importorskip("rouge_score")
    metrics = build_metrics(
        ["string_similarity", "rouge", "ragas_exact_match", "semantic_similarity"], embedder=HashingEmbedder(128)
    )
    assert {m.kind for m in metrics} == {"ragas"}
    same = row(answer="Gustave Eiffel", reference="Gustave Eiffel")
    assert [run(m, same) for m in metrics] == pytest.approx([1.0, 1.0, 1.0, 1.0])
    other = row(answer="Gustave Eiffel", reference="gustave eiffel")
    values = dict(zip([m.name for m in metrics], [run(m, other) for m in metrics], strict=True))
    assert values["ragas_exact_match"] == 0.0  # ragas' exact match does not normalise
    assert values["rouge"] == 1.0
    assert 0.0 < values["string_similarity"] < 1.0


def test_registry_lists_offline_and_judged_metrics() -> None:
    names = metric_registry().names()
    assert set(DEFAULT_METRICS) | set(JUDGED_METRICS) <= set(names)


def test_build_metrics_shares_one_vector_cache() -> None:
    embedder = HashingEmbedder(128)
    metrics = build_metrics(["claim_support", "qa_relevance", "semantic_similarity"], embedder=embedder)
    caches = {id(m.metric.vectors) for m in metrics[:2]} | {id(metrics[2].embeddings.vectors)}  # type: ignore[attr-defined]
    assert len(caches) == 1


def test_unknown_metric_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match=r"unknown metric 'bleu'; valid: .*exact_match.*token_f1"):
        build_metrics(["exact_match", "bleu"])


def test_judged_metric_without_judge_says_pass_judge() -> None:
    with pytest.raises(ConfigError, match="faithfulness.*--judge"):
        build_metrics(["exact_match", "faithfulness"])


def test_embedding_metric_without_embedder() -> None:
    with pytest.raises(ConfigError, match="qa_relevance.*embedder"):
        build_metrics(["qa_relevance"])


def test_user_metric_added_to_a_registry() -> None:
    class Always:
        name, kind, requires = "always", "offline", ("answer",)

        async def ascore(self, item: ScoreInput):  # pragma: no cover - not scored here
            raise NotImplementedError

    registry = metric_registry()
    registry.add("always", Always)
    [metric] = build_metrics(["always"], registry=registry)
    assert isinstance(metric, Metric) and metric.name == "always"
