"""Real generation with the SmolLM2-135M GGUF through llama-cpp-python."""

import json
import time

import pytest

from workbench.core.errors import ProviderTimeout, ProviderUnavailable
from workbench.core.protocols import GenerationRequest
from workbench.core.schema import LlamaCppEndpoint, RetryConfig
from workbench.models import EndpointPool, LlamaCppModel

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ASK = GenerationRequest(
    question="What is the capital of France?",
    messages=(
        {"role": "system", "content": "Answer in a few words."},
        {"role": "user", "content": "What is the capital of France?"},
    ),
)


@pytest.fixture(scope="module")
def model(llama_endpoint: LlamaCppEndpoint) -> LlamaCppModel:
    m = LlamaCppModel(llama_endpoint)
    m.warm_up()
    return m


def test_constructor_does_not_load(llama_endpoint):
    m = LlamaCppModel(llama_endpoint)
    assert m._llm is None and m.model_name == ""


def test_generates_text_with_usage(model):
    out = model.complete(ASK)
    assert out.text
    assert 0 < out.tokens_out <= 24
    assert out.tokens_in > 10
    assert "smollm2" in out.model.lower()


def test_temperature_zero_is_deterministic(model):
    assert model.complete(ASK).text == model.complete(ASK).text


def test_json_schema_output_parses(model):
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}, "found": {"type": "boolean"}},
        "required": ["answer", "found"],
    }
    request = ASK.model_copy(update={"json_schema": schema, "params": {"max_tokens": 48}})
    data = json.loads(model.complete(request).text)
    assert isinstance(data["answer"], str) and isinstance(data["found"], bool)


async def test_async_completion_in_thread(model):
    out = await model.acomplete(ASK.model_copy(update={"params": {"max_tokens": 8}}))
    assert out.text and out.tokens_out <= 8


def test_pool_builds_llama_from_config(llama_endpoint):
    pool = EndpointPool({"smol": llama_endpoint})
    completion, [call] = pool.complete("smol", ASK.model_copy(update={"params": {"max_tokens": 8}}))
    assert completion.text and call.endpoint == "smol" and call.tokens_out == completion.tokens_out
    pool.close()
    assert pool._models == {}


COUNT = GenerationRequest(
    question="count",
    messages=({"role": "user", "content": "Count from 1 to 1000, one number per line."},),
    params={"max_tokens": 900, "stop": None},
)
SHORT = ASK.model_copy(update={"params": {"max_tokens": 6}})
# Generous: these machines are shared. Without the stop, 900 tokens take far longer.
SLACK_S = 8.0


async def test_a_timed_out_generation_stops_and_frees_the_model(model, llama_endpoint):
    # The pool times the call out after 1 s; the model's own deadline is far away, so the
    # stop comes from the cancelled caller.
    pool = EndpointPool(
        {"smol": llama_endpoint.model_copy(update={"timeout_s": 1.0, "retry": RetryConfig(max_attempts=1)})},
        {"smol": model},
    )
    before = model.complete(SHORT).text
    started = time.perf_counter()
    with pytest.raises(ProviderUnavailable) as info:
        await pool.acomplete("smol", COUNT)
    assert isinstance(info.value.__cause__, ProviderTimeout)
    # The call ends once the generation has let go of the model, a token or so after the timeout.
    assert time.perf_counter() - started < 1.0 + SLACK_S
    assert model._lock.acquire(blocking=False)
    model._lock.release()
    assert model.complete(SHORT).text == before  # the cut-off generation left nothing behind


def test_a_sync_call_past_its_timeout_raises_instead_of_answering_in_part(llama_endpoint):
    hurried = LlamaCppModel(llama_endpoint.model_copy(update={"timeout_s": 1.0}))
    hurried.warm_up()
    started = time.perf_counter()
    with pytest.raises(ProviderTimeout, match="did not finish within 1s"):
        hurried.complete(COUNT)
    assert time.perf_counter() - started < 1.0 + SLACK_S
    assert hurried._lock.acquire(blocking=False)
    hurried._lock.release()
    hurried.close()


def test_counts_tokens_with_its_own_tokenizer_once_loaded(llama_endpoint, model):
    assert LlamaCppModel(llama_endpoint).count_tokens("What is the capital of France?") is None  # not loaded: estimate
    text = "What is the capital of France? Paris, naturally."
    expected = len(model._llm.tokenize(text.encode(), add_bos=False, special=False))
    assert model.count_tokens(text) == expected > 0
