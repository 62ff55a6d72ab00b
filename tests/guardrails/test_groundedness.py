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
