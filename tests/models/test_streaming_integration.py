"""Streaming from real local models: the SmolLM2 GGUF in process and behind a real llama.cpp
server. Greedy decoding streams exactly the text (and usage) of the plain call."""

from __future__ import annotations

from typing import Any

import pytest

from workbench.core.protocols import Completion, GenerationRequest
from workbench.core.schema import LlamaCppEndpoint, OpenAICompatEndpoint
from workbench.models import LlamaCppModel, OpenAICompatModel

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ASK = GenerationRequest(
    question="What is the capital of France?",
    messages=(
        {"role": "system", "content": "Answer in a few words."},
        {"role": "user", "content": "What is the capital of France? Tell me about it."},
    ),
    params={"max_tokens": 40},
)


async def _collect(stream: Any) -> tuple[list[str], Completion]:
    items = [item async for item in stream]
    *pieces, completion = items
    return pieces, completion


async def test_llama_cpp_stream_equals_the_plain_call(llama_endpoint: LlamaCppEndpoint) -> None:
    model = LlamaCppModel(llama_endpoint)
    try:
        plain = await model.acomplete(ASK)
        pieces, streamed = await _collect(model.astream(ASK))
        # Stopped by an end-of-turn token too, not only by max_tokens.
        short = ASK.model_copy(update={"params": {"max_tokens": 200}})
        plain_short = await model.acomplete(short)
        _, streamed_short = await _collect(model.astream(short))
    finally:
        model.close()
    assert len(pieces) > 5  # token by token, not one block
    assert "".join(pieces).strip() == streamed.text
    assert streamed == plain
    assert streamed_short == plain_short and streamed_short.tokens_out < 200


async def test_llama_cpp_json_stream_equals_the_plain_call(llama_endpoint: LlamaCppEndpoint) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    request = ASK.model_copy(update={"json_schema": schema, "params": {"max_tokens": 48}})
    model = LlamaCppModel(llama_endpoint)
    try:
        # The first grammar-constrained call on a fresh model can space its JSON differently
        # from every later one, streamed or not (llama.cpp reuses the evaluated prompt from the
        # second call on); compare calls made alike.
        await model.acomplete(request)
        plain = await model.acomplete(request)
        _, streamed = await _collect(model.astream(request))
    finally:
        model.close()
    assert streamed == plain and streamed.text.startswith("{")


async def test_openai_compat_stream_from_a_real_server_equals_the_plain_call(llama_server_url: str) -> None:
    config = OpenAICompatEndpoint(
        provider="openai_compat",
        base_url=llama_server_url,
        model="smollm2",
        params={"temperature": 0.0, "max_tokens": 32, "seed": 0},
    )
    model = OpenAICompatModel(config)
    try:
        plain = await model.acomplete(ASK)
        pieces, streamed = await _collect(model.astream(ASK))
    finally:
        await model.aclose()
    assert len(pieces) > 3
    assert streamed.text == plain.text and streamed.model == plain.model
    # llama.cpp's server may or may not honour include_usage; either way the counts are sane.
    assert streamed.tokens_in > 5 and 0 < streamed.tokens_out <= 32
