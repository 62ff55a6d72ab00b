"""Streaming at the model layer: each provider's `astream`, and `EndpointPool.astream`'s rule
that fallback happens only before the first committed byte."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import httpx
import pytest

from workbench.core.errors import ProviderError, ProviderRejected, ProviderTimeout, ProviderUnavailable, RateLimited
from workbench.core.protocols import Completion, GenerationRequest, StreamingChatModel
from workbench.core.schema import ExtractiveEndpoint, LlamaCppEndpoint, ModelSource, OpenAICompatEndpoint
from workbench.core.state import Chunk
from workbench.models import EndpointPool, ExtractiveModel, LlamaCppModel, OpenAICompatModel
from workbench.testing.fake_llama import FakeLlama
from workbench.testing.models import FunctionModel, ScriptedModel, SlowModel, StreamingScriptedModel

ASK = GenerationRequest(question="Who led the Normans?", messages=({"role": "user", "content": "Who led them?"},))
TEXT = "Rollo led the Normans. He was a Viking."


class Sink:
    """A `PieceSink` whose commit the test decides: after `commit_after` pieces of an attempt."""

    def __init__(self, commit_after: int | None = None) -> None:
        self.commit_after = commit_after
        self.pieces: list[str] = []
        self.restarts: list[str] = []
        self.committed = False

    def restart(self, endpoint: str) -> None:
        self.restarts.append(endpoint)
        self.pieces = []

    async def write(self, piece: str) -> None:
        self.pieces.append(piece)
        if self.commit_after is not None and len(self.pieces) >= self.commit_after:
            self.committed = True


def pool(models: dict[str, Any], *, max_attempts: int = 2, timeout_s: float = 60.0) -> EndpointPool:
    retry = {"max_attempts": max_attempts, "base_delay_s": 0}
    configs = {
        "primary": ExtractiveEndpoint(
            provider="extractive", fallbacks=["backup"], retry=retry, timeout_s=timeout_s, cost={"input_per_1k": 1.0}
        ),
        "backup": ExtractiveEndpoint(provider="extractive", retry=retry),
    }
    return EndpointPool(configs, models)


async def test_pool_streams_pieces_and_accounts_like_acomplete() -> None:
    sink = Sink()
    p = pool({"primary": ScriptedModel([TEXT], repeat_last=True), "backup": ScriptedModel([])})
    completion, calls = await p.astream("primary", ASK, sink)
    plain, plain_calls = await p.acomplete("primary", ASK)
    assert "".join(sink.pieces) == completion.text == plain.text == TEXT
    assert len(sink.pieces) == len(TEXT.split())
    assert sink.restarts == ["primary"]
    strip = {"latency_s"}
    assert [c.model_dump(exclude=strip) for c in calls] == [c.model_dump(exclude=strip) for c in plain_calls]
    assert calls[0].cost > 0 and calls[0].fallback_from is None


async def test_before_a_commit_a_failure_retries_then_falls_back_with_fresh_text() -> None:
    sink = Sink()  # never commits
    primary = StreamingScriptedModel(["Normans came"], repeat_last=True, fail_after=1)
    p = pool({"primary": primary, "backup": ScriptedModel([TEXT])})
    completion, [call] = await p.astream("primary", ASK, sink)
    assert primary.calls == 2  # retried once, then the fallback
    assert sink.restarts == ["primary", "primary", "backup"]
    assert "".join(sink.pieces) == TEXT == completion.text  # the failed attempts' words are gone
    assert (call.endpoint, call.fallback_from) == ("backup", "primary")


async def test_after_a_commit_a_failure_is_raised_without_retry_or_fallback() -> None:
    sink = Sink(commit_after=2)
    primary = StreamingScriptedModel([TEXT], repeat_last=True, fail_after=3, error=RateLimited)
    backup = ScriptedModel([TEXT])
    p = pool({"primary": primary, "backup": backup})
    with pytest.raises(RateLimited, match="after 3 piece"):
        await p.astream("primary", ASK, sink)
    assert primary.calls == 1 and backup.calls == 0
    assert p.breaker("primary").failure_rate() > 0  # a mid-stream failure counts against the endpoint


async def test_the_timeout_bounds_the_whole_stream() -> None:
    sink = Sink(commit_after=1)
    slow = StreamingScriptedModel([TEXT], piece_delay_s=0.05)
    p = pool({"primary": slow, "backup": ScriptedModel([TEXT])}, timeout_s=0.12)
    with pytest.raises(ProviderTimeout, match="did not finish within"):
        await p.astream("primary", ASK, sink)
    assert 1 <= slow.pieces_sent < len(TEXT.split())


async def test_a_model_without_astream_streams_as_one_piece() -> None:
    class Plain:
        async def acomplete(self, request: GenerationRequest) -> Completion:
            return Completion(text=TEXT, tokens_in=3, tokens_out=9, model="plain")

        def complete(self, request: GenerationRequest) -> Completion:
            raise AssertionError("the async path must be used")

    sink = Sink()
    completion, _ = await pool({"primary": Plain(), "backup": ScriptedModel([])}).astream("primary", ASK, sink)
    assert sink.pieces == [TEXT] and completion.tokens_out == 9


async def test_a_stream_without_its_final_completion_is_a_provider_error() -> None:
    class Truncated:
        def complete(self, request: GenerationRequest) -> Completion:
            raise AssertionError

        async def acomplete(self, request: GenerationRequest) -> Completion:
            raise AssertionError

        async def astream(self, request: GenerationRequest):  # type: ignore[no-untyped-def]
            yield "Rollo"

    sink = Sink()
    p = pool({"primary": Truncated(), "backup": ScriptedModel([TEXT])}, max_attempts=1)
    completion, [call] = await p.astream("primary", ASK, sink)
    assert completion.text == TEXT and call.fallback_from == "primary"


async def test_cancelling_a_stream_releases_the_breaker_probe() -> None:
    sink = Sink()
    p = pool({"primary": StreamingScriptedModel([TEXT], piece_delay_s=1.0), "backup": ScriptedModel([])})
    task = asyncio.create_task(p.astream("primary", ASK, sink))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert p.breaker("primary").failure_rate() == 0


def test_fakes_stream_the_text_they_complete() -> None:
    for model in (ScriptedModel([TEXT]), FunctionModel(lambda r: TEXT), SlowModel(0.0, TEXT)):
        assert isinstance(model, StreamingChatModel)
        items = asyncio.run(_collect(model.astream(ASK)))
        assert "".join(items[:-1]) == TEXT and items[-1].text == TEXT


async def _collect(stream: Any) -> list[Any]:
    return [item async for item in stream]


async def test_extractive_streams_its_answer_as_one_piece() -> None:
    chunk = Chunk(chunk_id="c", doc_id="d", text=TEXT, start=0, end=len(TEXT))
    request = GenerationRequest(question="Who led the Normans?", chunks=(chunk,))
    model = ExtractiveModel(ExtractiveEndpoint(provider="extractive"))
    *pieces, completion = await _collect(model.astream(request))
    assert pieces == [completion.text] and completion == model.complete(request)


# -- OpenAI-compatible servers (server-sent events) ------------------------------------------


def sse(*events: Any, done: bool = True) -> bytes:
    # A string is a raw SSE line (a comment, a broken event); anything else a JSON data event.
    lines = [f"{e}\n\n" if isinstance(e, str) else f"data: {json.dumps(e)}\n\n" for e in events]
    return ("".join(lines) + ("data: [DONE]\n\n" if done else "")).encode()


def delta(text: str) -> dict[str, Any]:
    return {"model": "served", "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}


def openai(handler: Any) -> OpenAICompatModel:
    config = OpenAICompatEndpoint(provider="openai_compat", base_url="http://llm.test/v1", model="m", params={"x": 1})
    return OpenAICompatModel(config, async_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))


async def test_openai_stream_with_usage() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        body = sse(
            {"choices": [{"index": 0, "delta": {"role": "assistant"}}]},
            delta(" Rollo"),
            delta(" led them."),
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            {"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 4}},
        )
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    *pieces, completion = await _collect(openai(handler).astream(ASK))
    assert pieces == [" Rollo", " led them."]
    assert completion == Completion(text="Rollo led them.", tokens_in=11, tokens_out=4, model="served")
    assert seen[0]["stream"] is True and seen[0]["stream_options"] == {"include_usage": True} and seen[0]["x"] == 1


async def test_openai_stream_without_usage_estimates_it() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=sse(": keep-alive", delta("Rollo led the Normans."), done=False))

    *pieces, completion = await _collect(openai(handler).astream(ASK))
    assert pieces == ["Rollo led the Normans."]
    assert completion.tokens_in > 0 and completion.tokens_out > 0 and completion.model == "served"


@pytest.mark.parametrize(
    ("status", "error"),
    [(500, ProviderUnavailable), (429, RateLimited), (400, ProviderRejected), (408, ProviderTimeout)],
)
async def test_openai_stream_http_errors_map_to_the_error_tree(status: int, error: type[ProviderError]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, text="nope", headers={"retry-after": "2"})

    with pytest.raises(error, match=f"HTTP {status}: nope"):
        await _collect(openai(handler).astream(ASK))


async def test_openai_stream_errors_mid_stream() -> None:
    def error_event(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=sse(delta("Rollo"), {"error": {"message": "overloaded"}}))

    def garbage(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=sse(delta("Rollo"), "data: {not json"))

    def dropped(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("connection reset")

    with pytest.raises(ProviderUnavailable, match="mid-stream: .*overloaded"):
        await _collect(openai(error_event).astream(ASK))
    with pytest.raises(ProviderError, match="malformed stream event"):
        await _collect(openai(garbage).astream(ASK))
    with pytest.raises(ProviderUnavailable, match="connection reset"):
        await _collect(openai(dropped).astream(ASK))


# -- llama.cpp, with a fake `Llama` -----------------------------------------------------------


def fake_llama_model(token_s: float = 0.002, max_tokens: int = 5, timeout_s: float = 30.0) -> LlamaCppModel:
    config = LlamaCppEndpoint(
        provider="llama_cpp",
        source=ModelSource(path="/nowhere.gguf"),
        params={"max_tokens": max_tokens},
        timeout_s=timeout_s,
    )
    model = LlamaCppModel(config)
    model._llm = FakeLlama(token_s)
    return model


async def test_llama_stream_yields_each_token_then_the_completion() -> None:
    model = fake_llama_model()
    *pieces, completion = await _collect(model.astream(ASK))
    assert pieces == ["tok "] * 5
    assert completion.text == "tok tok tok tok tok" and completion.tokens_out == 5 and completion.tokens_in > 0


async def test_llama_stream_closed_early_stops_the_generation_and_frees_the_lock() -> None:
    model = fake_llama_model(token_s=0.01, max_tokens=10_000)
    fake = model._llm
    stream = model.astream(ASK)
    assert await anext(stream) == "tok "
    await stream.aclose()
    made = fake.tokens
    assert fake.running == 0 and made < 100
    assert model._lock.acquire(timeout=0)  # released: the next call can run
    model._lock.release()


async def test_llama_stream_past_its_deadline_raises_timeout() -> None:
    model = fake_llama_model(token_s=0.02, max_tokens=10_000, timeout_s=0.1)
    items: list[Any] = []
    with pytest.raises(ProviderTimeout, match="did not finish within"):
        async for item in model.astream(ASK):
            items.append(item)
    assert items and all(i == "tok " for i in items)  # pieces came, then the honest failure


async def test_llama_stream_cancelled_before_it_ran_never_runs() -> None:
    model = fake_llama_model(token_s=0.01, max_tokens=30)
    fake = model._llm
    gate = threading.Event()
    model._shared().submit(model, gate.wait)  # occupy the worker thread
    stream = model.astream(ASK)
    waiting = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.01)
    model.close()  # drops this model's queued calls
    gate.set()
    with pytest.raises(ProviderTimeout, match="cancelled"):
        await waiting
    assert fake.tokens == 0


async def test_a_failing_sink_is_not_charged_to_the_endpoint() -> None:
    class Broken(Sink):
        async def write(self, piece: str) -> None:
            raise KeyError("an output check broke")

    backup = ScriptedModel([TEXT])
    p = pool({"primary": ScriptedModel([TEXT]), "backup": backup})
    with pytest.raises(KeyError, match="output check"):
        await p.astream("primary", ASK, Broken())
    assert backup.calls == 0 and p.breaker("primary").failure_rate() == 0
