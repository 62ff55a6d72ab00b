"""OpenAICompatModel against a real llama.cpp OpenAI-compatible server, and a dead endpoint."""

import json

import pytest

from workbench.core.errors import ProviderUnavailable
from workbench.core.protocols import GenerationRequest
from workbench.core.schema import ExtractiveEndpoint, OpenAICompatEndpoint
from workbench.core.state import Chunk
from workbench.models import EndpointPool, OpenAICompatModel
from workbench.testing.llama_server import free_port

ASK = GenerationRequest(
    question="What is the capital of France?",
    messages=({"role": "user", "content": "What is the capital of France? Answer in one word."},),
)


def endpoint(url: str, **kw) -> OpenAICompatEndpoint:
    kw.setdefault("params", {"temperature": 0.0, "max_tokens": 16})
    return OpenAICompatEndpoint(provider="openai_compat", base_url=url, model="smollm2", **kw)


@pytest.mark.integration
@pytest.mark.slow
def test_real_server_answers_with_usage(llama_server_url):
    model = OpenAICompatModel(endpoint(llama_server_url))
    try:
        out = model.complete(ASK)
    finally:
        model.close()
    assert out.text
    assert 0 < out.tokens_out <= 16 and out.tokens_in > 5


@pytest.mark.integration
@pytest.mark.slow
async def test_real_server_async(llama_server_url):
    model = OpenAICompatModel(endpoint(llama_server_url))
    try:
        out = await model.acomplete(ASK)
    finally:
        await model.aclose()
    assert out.text


@pytest.mark.integration
@pytest.mark.slow
def test_real_server_json_schema(llama_server_url):
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    model = OpenAICompatModel(
        endpoint(llama_server_url, json_mode="json_object", params={"temperature": 0.0, "max_tokens": 40})
    )
    try:
        data = json.loads(model.complete(ASK.model_copy(update={"json_schema": schema})).text)
    finally:
        model.close()
    assert isinstance(data["answer"], str)


@pytest.mark.integration
def test_closed_port_is_provider_unavailable():
    model = OpenAICompatModel(endpoint(f"http://127.0.0.1:{free_port()}/v1", timeout_s=5))
    with pytest.raises(ProviderUnavailable, match="cannot reach"):
        model.complete(ASK)
    model.close()


@pytest.mark.integration
def test_dead_server_falls_back_to_extractive():
    chunk = Chunk(chunk_id="1", doc_id="d", text="Paris is the capital of France.", start=0, end=31)
    pool = EndpointPool(
        {
            "remote": endpoint(
                f"http://127.0.0.1:{free_port()}/v1",
                fallbacks=["extractive"],
                retry={"max_attempts": 2, "base_delay_s": 0},
            ),
            "extractive": ExtractiveEndpoint(provider="extractive"),
        }
    )
    completion, [call] = pool.complete("remote", ASK.model_copy(update={"chunks": (chunk,)}))
    pool.close()
    assert completion.text == "Paris is the capital of France."
    assert (call.endpoint, call.fallback_from) == ("extractive", "remote")
