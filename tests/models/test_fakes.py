import pytest

from workbench.core.errors import RateLimited
from workbench.core.protocols import ChatModel, Completion, GenerationRequest
from workbench.testing.models import FailingModel, FunctionModel, ScriptedModel, SlowModel

REQ = GenerationRequest(question="q")


def test_fakes_implement_chat_model():
    for fake in (ScriptedModel(["a"]), FunctionModel(lambda r: "a"), FailingModel(), SlowModel(0)):
        assert isinstance(fake, ChatModel)


def test_scripted_plays_in_order_and_raises_when_exhausted():
    done = Completion(text="c", tokens_in=1, tokens_out=1, model="m")
    model = ScriptedModel(["a", RateLimited("wait"), done])
    assert model.complete(REQ).text == "a"
    with pytest.raises(RateLimited):
        model.complete(REQ)
    assert model.complete(REQ) is done
    with pytest.raises(AssertionError, match="ran out"):
        model.complete(REQ)
    assert model.calls == 4


def test_failing_model_recovers_after_fail_times():
    model = FailingModel(RateLimited, fail_times=2, reply="fine")
    for _ in range(2):
        with pytest.raises(RateLimited, match="injected failure"):
            model.complete(REQ)
    assert model.complete(REQ).text == "fine"


async def test_function_and_slow_models_async():
    assert (await FunctionModel(lambda r: r.question.upper()).acomplete(REQ)).text == "Q"
    assert (await SlowModel(0.001, reply="late").acomplete(REQ)).text == "late"
