import pytest

from workbench.core.schema import GroundednessCheck
from workbench.core.state import RequestState
from workbench.guardrails import CheckContext, build_check
from workbench.guardrails.groundedness import ABSTAIN_TEXT


def _check(routes=None, embedder=None, threshold=0.5):
    config = GroundednessCheck(check="groundedness", threshold=threshold, action="flag")
    return build_check(config, CheckContext(side="output", routes=routes or {}, embedder=embedder))


SUPPORTED = "Rollo swore fealty to King Charles III in 911."
UNSUPPORTED = "The Normans invented the printing press in Germany during 1450."


@pytest.mark.parametrize("use_embedder", [False, True])
def test_supported_answer_passes_and_unsupported_is_flagged(chunks, embedder, use_embedder):
    check = _check(embedder=embedder if use_embedder else None)
    state = RequestState(query="q", chunks=chunks)
    good = check.inspect(SUPPORTED, state)
    bad = check.inspect(UNSUPPORTED, state)
    assert not good.triggered and good.score is not None and good.score >= 0.7
    assert bad.triggered and bad.score is not None and bad.score < 0.5
    assert "printing press" in bad.detail


@pytest.mark.parametrize("answer", ["I don't know.", "I do not know", "The context does not contain the answer."])
def test_abstentions_are_not_flagged(chunks, answer):
    result = _check().inspect(answer, RequestState(query="q", chunks=chunks))
    assert not result.triggered and "abstains" in result.detail


def test_abstained_state_is_not_flagged(chunks):
    state = RequestState(query="q", chunks=chunks, abstained=True)
    assert not _check().inspect(UNSUPPORTED, state).triggered


def test_no_chunks_means_unsupported():
    result = _check().inspect(SUPPORTED, RequestState(query="q"))
    assert result.triggered and result.score == 0.0


def test_mask_keeps_only_supported_sentences(chunks):
    result = _check().inspect(f"{SUPPORTED} {UNSUPPORTED}", RequestState(query="q", chunks=chunks))
    assert result.triggered is False or result.masked_text == SUPPORTED
    only_bad = _check().inspect(UNSUPPORTED, RequestState(query="q", chunks=chunks))
    assert only_bad.masked_text == ABSTAIN_TEXT


def test_mixed_answer_with_strict_threshold_masks_to_supported_part(chunks):
    result = _check(threshold=0.8).inspect(f"{SUPPORTED} {UNSUPPORTED}", RequestState(query="q", chunks=chunks))
    assert result.triggered and result.masked_text == SUPPORTED


def test_json_answers_are_judged_on_their_strings(chunks, routes):
    check = _check(routes=routes)
    good = '{"answer": "Rollo swore fealty to Charles III", "found": true}'
    bad = '{"answer": "Gutenberg in Mainz", "found": true}'
    state = RequestState(query="q", chunks=chunks, route="structured")
    assert not check.inspect(good, state).triggered
    assert check.inspect(bad, state).triggered
    assert not check.inspect('{"answer": "", "found": false}', state).triggered


QUESTION = "Who were the Normans who gave their name to Normandy?"
RESTATED = "The Normans gave their name to Normandy."


def test_a_sentence_restating_the_question_is_not_a_claim(chunks):
    answer = f"{RESTATED} {UNSUPPORTED}"
    asked = _check().inspect(answer, RequestState(query=QUESTION, chunks=chunks))
    unasked = _check().inspect(answer, RequestState(query="q", chunks=chunks))
    # With the question known, the restatement is no claim: only the invention is scored.
    assert asked.triggered and "1 of 1 claims" in asked.detail and "printing press" in asked.detail
    assert asked.masked_text == ABSTAIN_TEXT
    # Without it, the restatement counts as a supported claim and lifts the score.
    assert unasked.score is not None and asked.score is not None and unasked.score > asked.score + 0.3


@pytest.mark.parametrize("use_embedder", [False, True])
def test_only_the_unsupported_claim_is_masked(chunks, embedder, use_embedder):
    check = _check(threshold=0.8, embedder=embedder if use_embedder else None)
    answer = f"{RESTATED} {SUPPORTED} {UNSUPPORTED}"
    result = check.inspect(answer, RequestState(query=QUESTION, chunks=chunks))
    assert result.triggered and "unsupported 1 of 2 claims" in result.detail
    assert "printing press" in result.detail and "Rollo" not in result.detail
    assert result.masked_text == f"{RESTATED} {SUPPORTED}"


def test_guard_score_is_the_claim_support_metric(chunks, embedder):
    import asyncio

    from workbench.evaluation.metrics.claims import ClaimSupport

    answer = f"{RESTATED} {SUPPORTED} {UNSUPPORTED}"
    texts = [c.text for c in chunks]
    metric = ClaimSupport(embedder).metric
    expected = asyncio.run(metric.ascore(answer, texts, QUESTION)).value
    guard = _check(embedder=embedder).inspect(answer, RequestState(query=QUESTION, chunks=chunks))
    assert guard.score == pytest.approx(expected)
