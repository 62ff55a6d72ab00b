"""Real generation with the SmolLM2-135M GGUF through llama-cpp-python."""

import json

import pytest

from workbench.core.protocols import GenerationRequest
from workbench.core.schema import LlamaCppEndpoint
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
