"""`LlamaCppModel` timeouts and cancellation, with a fake `Llama` that emits one token per tick:
a stopped generation raises instead of answering, frees the model within a token, and abandoned
calls never hold threads of the event loop's default executor."""

from __future__ import annotations

import asyncio
import time

import pytest

from workbench.core.errors import ProviderError, ProviderTimeout
from workbench.core.protocols import GenerationRequest
from workbench.core.schema import LlamaCppEndpoint
from workbench.models import EndpointPool, LlamaCppModel
from workbench.testing.fake_llama import FakeLlama

LONG = GenerationRequest(question="count", params={"max_tokens": 10_000})
SHORT = GenerationRequest(question="hi", params={"max_tokens": 2})


def fake_model(timeout_s: float = 30.0, token_s: float = 0.005) -> tuple[LlamaCppModel, FakeLlama]:
    config = LlamaCppEndpoint(provider="llama_cpp", source={"path": "/nowhere.gguf"}, timeout_s=timeout_s)
    model = LlamaCppModel(config)
    fake = FakeLlama(token_s)
    model._llm = fake
    return model, fake


def test_a_generation_past_its_deadline_raises_instead_of_answering():
    model, fake = fake_model(timeout_s=0.1)
    started = time.perf_counter()
    with pytest.raises(ProviderTimeout, match="did not finish within 0.1s"):
        model.complete(LONG)
    assert time.perf_counter() - started < 1.0
    assert fake.running == 0 and model._lock.acquire(blocking=False)
    model._lock.release()
    assert model.complete(SHORT).tokens_out == 2  # the next call is not cut short


async def test_cancelling_the_caller_stops_the_generation_and_frees_the_lock():
    model, fake = fake_model()
    task = asyncio.create_task(model.acomplete(LONG))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # `acomplete` returns from a cancel only once the generation has let go of the model.
    assert fake.running == 0
    assert model._lock.acquire(blocking=False)
    model._lock.release()
    tokens = fake.tokens
    await asyncio.sleep(0.05)
    assert fake.tokens == tokens < 100


async def test_abandoned_generations_never_starve_the_default_executor():
    model, fake = fake_model()
    config = model.config.model_copy(update={"timeout_s": 0.05})
    pool = EndpointPool({"m": config}, {"m": model})
    results = await asyncio.gather(*(pool.acomplete("m", LONG) for _ in range(24)), return_exceptions=True)
    assert all(isinstance(r, ProviderError) for r in results)
    # No worker thread of the loop's default executor is stuck behind the model...
    assert await asyncio.wait_for(asyncio.to_thread(lambda: "free"), 1.0) == "free"
    # ...the model ran one generation at a time, each stopped at its timeout...
    assert fake.running == 0 and fake.most_running == 1 and fake.tokens < 24 * 40
    # ...and it answers the next call at once.
    started = time.perf_counter()
    completion = await asyncio.wait_for(model.acomplete(SHORT), 1.0)
    assert completion.tokens_out == 2 and time.perf_counter() - started < 0.5


async def test_close_stops_a_generation_in_flight():
    model, fake = fake_model()
    task = asyncio.create_task(model.acomplete(LONG))
    await asyncio.sleep(0.05)
    await asyncio.to_thread(model.close)
    with pytest.raises(ProviderTimeout, match="was cancelled"):
        await task
    assert fake.closed and model._llm is None
    model.close()  # idempotent
