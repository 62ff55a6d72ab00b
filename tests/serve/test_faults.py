"""Section 5: with half the primary model's calls failing, every request gets the fallback's
answer or a clean 503 with Retry-After. None is lost, none hangs, none is a 500."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import httpx
import pytest

from tests.serve.conftest import serving
from workbench.core.errors import ProviderUnavailable
from workbench.core.protocols import Completion, GenerationRequest
from workbench.core.tokens import estimate_tokens
from workbench.serve.app import create_app

QUESTIONS = [
    "Who picked up the remaining four packages?",
    "When did the monopoly end?",
    "How many packages were there?",
    "Who was responsible for this?",
]
REQUESTS = 80
FAST_RETRY = {"max_attempts": 2, "base_delay_s": 0.01, "max_delay_s": 0.02}


class Flaky:
    """Fails half its calls at random (seeded): an error at once, or a hang past the endpoint's
    timeout; answers "primary answer" otherwise."""

    model = "flaky"

    def __init__(self, seed: int = 7, hang_s: float = 30.0) -> None:
        self.random = random.Random(seed)
        self.hang_s = hang_s
        self.calls = 0
        self.failures = 0

    def complete(self, request: GenerationRequest) -> Completion:
        raise NotImplementedError("the server calls acomplete")

    async def acomplete(self, request: GenerationRequest) -> Completion:
        self.calls += 1
        roll = self.random.random()
        if roll < 0.5:
            self.failures += 1
            if roll < 0.1:
                await asyncio.sleep(self.hang_s)  # cut by the endpoint's timeout_s
            raise ProviderUnavailable("injected failure")
        text = "primary answer"
        return Completion(text=text, tokens_in=estimate_tokens(request.question), tokens_out=2, model=self.model)


def _config(fallbacks: list[str]) -> dict[str, Any]:
    primary = {
        "provider": "openai_compat",
        "base_url": "http://127.0.0.1:9/v1",
        "model": "never-called",
        "fallbacks": fallbacks,
        "timeout_s": 0.3,
        "retry": FAST_RETRY,
        "breaker": {"failure_rate": 0.5, "window": 10, "min_calls": 4, "cooldown_s": 0.5},
    }
    extractive = {"provider": "extractive", "min_support": 0.25}
    return {
        "models": {"primary": primary, "extractive": extractive},
        "generation": {"model": "primary", "prompt": "plain"},
    }


async def _one(client: httpx.AsyncClient, n: int) -> tuple[str, int, Any]:
    question = QUESTIONS[n % len(QUESTIONS)]
    kind = ("ask", "chat", "stream")[n % 3]
    if kind == "ask":
        r = await client.post("/v1/ask", json={"question": question})
    else:
        body = {"model": "extractive", "messages": [{"role": "user", "content": question}], "stream": kind == "stream"}
        r = await client.post("/v1/chat/completions", json=body)
    return kind, r.status_code, r


def _check(kind: str, status: int, r: httpx.Response) -> str:
    """'primary', 'fallback' or 'unavailable'; fails on anything else."""
    if status == 503:
        assert int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["type"] == "service_unavailable"
        return "unavailable"
    assert status == 200, r.text
    if kind == "stream":
        lines = [line.removeprefix("data: ") for line in r.text.splitlines() if line.startswith("data: ")]
        assert lines[-1] == "[DONE]", r.text  # a stream that started finishes: the fallback ran before any byte
        final = json.loads(lines[-2])
        models = final["workbench"]["models"]
    else:
        body = r.json()
        models = (body.get("workbench") or body)["models"]
    return "primary" if models == ["primary"] else "fallback"


@pytest.mark.parametrize("fallbacks", [["extractive"], []], ids=["with-fallback", "no-fallback"])
async def test_half_the_primary_calls_failing(make_session, make_served, fallbacks: list[str]) -> None:
    flaky = Flaky()
    wb = make_session(fakes={"primary": flaky}, **_config(fallbacks))
    served = make_served(wb)
    async with serving(create_app(served)) as client:
        results = await asyncio.wait_for(asyncio.gather(*(_one(client, n) for n in range(REQUESTS))), timeout=60)
        outcomes = [_check(*result) for result in results]
        metrics = (await client.get("/metrics")).text
    assert len(outcomes) == REQUESTS and flaky.failures > 0
    assert "primary" in outcomes
    if fallbacks:
        assert "unavailable" not in outcomes and "fallback" in outcomes
        assert 'workbench_fallbacks_total{endpoint="extractive",fallback_from="primary"}' in metrics
    else:
        assert "unavailable" in outcomes and "fallback" not in outcomes
        assert 'workbench_request_errors_total{endpoint="/v1/ask",status="503"}' in metrics
    assert 'workbench_breaker_state{endpoint="primary"}' in metrics
    served.request_log.flush()
    import duckdb

    with duckdb.connect(str(served.request_log.path), read_only=True) as con:
        logged = dict(con.execute("SELECT status, count(*) FROM requests GROUP BY status").fetchall())
    assert sum(logged.values()) == REQUESTS and set(logged) <= {200, 503}
