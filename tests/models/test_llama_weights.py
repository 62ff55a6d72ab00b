"""`LlamaWeights`: the models of a sweep share one loaded `Llama` per GGUF file, with its lock
and worker thread; closing one model leaves the others working."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from workbench.core.errors import ProviderTimeout
from workbench.core.protocols import GenerationRequest
from workbench.core.schema import LlamaCppEndpoint
from workbench.models.llama_cpp import LlamaCppModel, LlamaWeights
from workbench.testing.fake_llama import FakeLlama

LONG = GenerationRequest(question="count", params={"max_tokens": 10_000})
SHORT = GenerationRequest(question="hi", params={"max_tokens": 2})


@pytest.fixture
def gguf_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF")
    return path


def endpoint(path: Path, **update: Any) -> LlamaCppEndpoint:
    return LlamaCppEndpoint(provider="llama_cpp", source={"path": str(path)}, **update)


def shared_fakes(path: Path, *updates: dict[str, Any]) -> tuple[LlamaWeights, list[LlamaCppModel], FakeLlama]:
    weights = LlamaWeights()
    models = [LlamaCppModel(endpoint(path, **u), weights=weights) for u in updates]
    fake = FakeLlama()
    models[0]._llm = fake  # stands in for the load every model would share
    return weights, models, fake


def test_models_differing_in_params_or_timeout_share_one_model_lock_and_thread(gguf_file):
    _, (a, b), fake = shared_fakes(gguf_file, {"params": {"max_tokens": 8}}, {"timeout_s": 5.0})
    assert a._llm is b._llm is fake and a._lock is b._lock
    assert a.complete(SHORT).text == b.complete(SHORT).text == "tok tok"


def test_a_different_context_size_or_file_is_another_model(gguf_file, tmp_path):
    other = tmp_path / "other.gguf"
    other.write_bytes(b"GGUF")
    weights = LlamaWeights()
    base = LlamaCppModel(endpoint(gguf_file), weights=weights)
    same = LlamaCppModel(endpoint(tmp_path / "." / "tiny.gguf"), weights=weights)
    assert weights.get(base.config) is weights.get(same.config)
    for config in (endpoint(gguf_file, n_ctx=1024), endpoint(gguf_file, n_threads=1), endpoint(other)):
        assert weights.get(config) is not weights.get(base.config)


def test_without_weights_each_model_owns_its_own(gguf_file):
    a, b = LlamaCppModel(endpoint(gguf_file)), LlamaCppModel(endpoint(gguf_file))
    a._llm = FakeLlama()
    assert b._llm is None and a._lock is not b._lock


async def test_calls_of_models_sharing_weights_run_one_at_a_time(gguf_file):
    _, (a, b), fake = shared_fakes(gguf_file, {}, {"params": {"temperature": 0.5}})
    request = GenerationRequest(question="x", params={"max_tokens": 5})
    results = await asyncio.gather(*(m.acomplete(request) for m in (a, b) * 4))
    assert [r.tokens_out for r in results] == [5] * 8
    assert fake.most_running == 1


async def test_closing_one_model_stops_only_its_calls_and_keeps_the_weights(gguf_file):
    _, (a, b), fake = shared_fakes(gguf_file, {}, {})
    mine = asyncio.create_task(a.acomplete(LONG))
    theirs = asyncio.create_task(b.acomplete(GenerationRequest(question="x", params={"max_tokens": 20})))
    queued = asyncio.create_task(a.acomplete(SHORT))  # behind both on the one worker thread
    await asyncio.sleep(0.05)
    await asyncio.to_thread(a.close)
    with pytest.raises(ProviderTimeout, match="was cancelled"):
        await mine
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert (await theirs).tokens_out == 20
    assert not fake.closed and b._llm is fake
    assert (await b.acomplete(SHORT)).tokens_out == 2
    assert a.complete(SHORT).tokens_out == 2  # a closed model still answers, on the same weights


async def test_closing_the_weights_stops_every_call_and_frees_the_model(gguf_file):
    weights, (a, b), fake = shared_fakes(gguf_file, {}, {})
    task = asyncio.create_task(b.acomplete(LONG))
    await asyncio.sleep(0.05)
    assert len(weights) == 1
    await asyncio.to_thread(weights.close)
    with pytest.raises(ProviderTimeout, match="was cancelled"):
        await task
    assert fake.closed and a._llm is None and b._llm is None and len(weights) == 0


# -- the real GGUF -------------------------------------------------------------------------


SYSTEM = "You are a precise assistant. Answer with a few words taken from the context, or say I don't know."
CHUNKS = [
    "[1] The Normans were the people who in the 10th and 11th centuries gave their name to Normandy, a region "
    "in France. They were descended from Norse raiders and pirates from Denmark, Iceland and Norway.",
    "[2] In 2006, the Irish broadcaster Setanta Sports was awarded two of the six Premier League packages "
    "that the English FA offered to broadcasters.",
    "[3] Warsaw, especially its city centre, is home not only to many national institutions and government "
    "agencies, but also to many domestic and international companies.",
    "[4] Sky picked up the remaining four packages for 1.3 billion pounds.",
]
QUESTIONS = ["Who was awarded two packages?", "Where did the Normans come from?"]


def grounded(question: str, top_k: int) -> GenerationRequest:
    context = "\n\n".join(CHUNKS[:top_k])
    user = f'Context:\n{context}\n\nAnswer the question "{question}" in a few words:'
    return GenerationRequest(
        question=question,
        messages=({"role": "system", "content": SYSTEM}, {"role": "user", "content": user}),
    )


@pytest.mark.integration
@pytest.mark.slow
def test_models_with_different_params_share_one_llama_and_both_answer(llama_endpoint):
    weights = LlamaWeights()
    short = LlamaCppModel(
        llama_endpoint.model_copy(update={"params": {"temperature": 0.0, "max_tokens": 4}}), weights=weights
    )
    long = LlamaCppModel(llama_endpoint.model_copy(update={"timeout_s": 30.0}), weights=weights)
    try:
        short.warm_up()
        long.warm_up()
        assert short._llm is long._llm is not None and len(weights) == 1
        request = grounded(QUESTIONS[0], 2)
        first, second = short.complete(request), long.complete(request)
        assert first.text and second.text and first.tokens_out <= 4
        assert first.model == second.model and "smollm2" in first.model.lower()
        short.close()
        assert long._llm is not None and long.complete(request).text == second.text
    finally:
        weights.close()
    assert len(weights) == 0 and long._llm is None
