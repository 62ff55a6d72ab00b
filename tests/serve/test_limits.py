"""Rate limits and quotas in process: token buckets per key and team, reserve then settle,
daily quotas, the 429/402 headers, streams cut mid-way, and the store-failure policy."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
import yaml
from fastapi import FastAPI, Request

from tests.conftest import assert_one_line_error, run_cli
from tests.serve.conftest import serving
from tests.serve.test_chat_stream import events
from workbench.core.errors import ConfigError, PaymentRequired, QuotaExceeded
from workbench.serve.app import create_app
from workbench.serve.limits import Limiter, LimitsConfig, MemoryStore, TeamLimits
from workbench.serve.limits.store import Outcome, Spec
from workbench.serve.principal import Principal
from workbench.testing.models import ScriptedModel

QUESTION = "Who picked up the remaining four packages?"
ANSWER = "Sky picked up the remaining four packages from the depot on the morning of the second day."
PRINCIPALS = {
    "a1": Principal("a1", "alpha"),
    "a2": Principal("a2", "alpha"),
    "b1": Principal("b1", "beta"),
    "slow": Principal("slow", "gamma", rpm=2),
    "tight": Principal("tight", "gamma", tpm=40),
    "stream": Principal("stream", "delta", tpm=12),
}


async def test_authenticate(request: Request) -> None:
    request.state.principal = PRINCIPALS[request.headers["x-test-key"]]


test_authenticate.__test__ = False  # type: ignore[attr-defined]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def model() -> ScriptedModel:
    return ScriptedModel([ANSWER], repeat_last=True)


@pytest.fixture
def make_app(make_session: Any, make_served: Any, model: ScriptedModel) -> Callable[..., tuple[FastAPI, Limiter]]:
    def make(config: LimitsConfig | None = None, **kwargs: Any) -> tuple[FastAPI, Limiter]:
        limiter = Limiter(config or LimitsConfig(context_tokens=0, output_tokens=10), **kwargs)
        served = make_served(make_session(fakes={"extractive": model}))
        return create_app(served, authenticate=test_authenticate, limiter=limiter), limiter

    return make


async def ask(c: httpx.AsyncClient, key: str, **extra: Any) -> httpx.Response:
    return await c.post("/v1/ask", json={"question": QUESTION, **extra}, headers={"x-test-key": key})


def chat(key: str, **extra: Any) -> dict[str, Any]:
    body = {"model": "extractive", "messages": [{"role": "user", "content": QUESTION}], **extra}
    return {"json": body, "headers": {"x-test-key": key}}


# --- the buckets, without an app ----------------------------------------------------------------


async def test_a_bucket_refills_at_its_rate_and_says_when_to_retry() -> None:
    clock = Clock()
    store = MemoryStore(clock)
    spec = Spec("k", "bucket", 60)
    for _ in range(60):
        assert (await store.apply("reserve", [(spec, 1)])).ok
    refused = await store.apply("reserve", [(spec, 1)])
    assert not refused.ok and refused.failed == 0 and 0.9 < refused.retry_after <= 1.0
    clock.now += 1.0
    assert (await store.apply("reserve", [(spec, 1)])).ok
    assert not (await store.apply("reserve", [(spec, 1)])).ok


async def test_reserve_is_all_or_nothing_and_settle_refunds_or_charges() -> None:
    clock = Clock()
    store = MemoryStore(clock)
    requests, tokens = Spec("r", "bucket", 10), Spec("t", "bucket", 100)
    assert (await store.apply("reserve", [(requests, 1), (tokens, 80)])).levels == (9, 20)
    refused = await store.apply("reserve", [(requests, 1), (tokens, 30)])
    assert not refused.ok and refused.failed == 1 and refused.levels == (9, 20)  # nothing taken
    assert (await store.apply("settle", [(tokens, -50)])).levels == (70,)  # used 30 of 80: refund
    assert (await store.apply("settle", [(tokens, 120)])).levels == (-50,)  # used more: debt
    assert not (await store.apply("reserve", [(tokens, 1)])).ok


async def test_a_daily_counter_resets_at_midnight_utc() -> None:
    clock = Clock()
    clock.now = 86400.0 * 20000 + 100
    store = MemoryStore(clock)
    day = Spec("d", "daily", 50)
    assert (await store.apply("reserve", [(day, 50)])).ok
    refused = await store.apply("reserve", [(day, 0)])  # a spent quota refuses even nothing
    assert not refused.ok and refused.retry_after == pytest.approx(86300)
    clock.now += 86300
    assert (await store.apply("reserve", [(day, 50)])).ok


async def test_the_limiter_refuses_with_the_limit_it_hit() -> None:
    config = LimitsConfig(teams={"alpha": TeamLimits(tpm=100, daily_dollars=0.5)})
    limiter = Limiter(config)
    held = await limiter.reserve(PRINCIPALS["a1"], 60)
    assert held.headers() == {"x-ratelimit-limit-tokens": "100", "x-ratelimit-remaining-tokens": "40"}
    with pytest.raises(QuotaExceeded, match="team alpha: tokens per minute") as refused:
        await limiter.reserve(PRINCIPALS["a2"], 60)
    assert refused.value.remaining == {"tokens": 40} and refused.value.retry_after >= 1
    await limiter.settle(held, 20, cost=0.6)  # 40 refunded; the dollars are spent
    with pytest.raises(PaymentRequired, match="dollars per day"):
        await limiter.reserve(PRINCIPALS["a2"], 60)
    await limiter.reserve(PRINCIPALS["b1"], 60)  # another team: unaffected


def test_the_limits_file_is_typed_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "limits.yaml"
    data = {"defaults": {"rpm": 600}, "teams": {"research": {"rpm": 120, "tpm": 60000, "daily_dollars": 5.0}}}
    path.write_text(yaml.safe_dump(data))
    config = LimitsConfig.from_yaml(path)
    assert config.team("research").tpm == 60000 and config.team("other").rpm == 600
    assert LimitsConfig.model_validate(yaml.safe_load(yaml.safe_dump(config.model_dump(mode="json")))) == config
    path.write_text(yaml.safe_dump({"teams": {"research": {"rpn": 1}}}))
    with pytest.raises(ConfigError, match="teams.research.rpn"):
        LimitsConfig.from_yaml(path)


def test_serve_refuses_a_bad_limits_file_in_one_line_before_serving(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    limits = tmp_path / "limits.yaml"
    limits.write_text(yaml.safe_dump({"teams": {"blue": {"rpm": 0}}}))
    code, _, err = run_cli(capsys, "serve", str(tmp_path / "no-bundle"), "--limits", str(limits))
    assert_one_line_error(code, err, "teams.blue.rpm")


# --- the served app ---------------------------------------------------------------------------


async def test_a_key_over_its_rpm_gets_429_before_any_model_call(make_app: Any, model: ScriptedModel) -> None:
    app, _ = make_app()
    async with serving(app) as c:
        for _ in range(2):
            r = await ask(c, "slow")
            assert r.status_code == 200, r.text
        assert r.headers["x-ratelimit-remaining-requests"] == "0"
        r = await ask(c, "slow")
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1 and r.headers["x-ratelimit-remaining-requests"] == "0"
        error = r.json()["error"]
        assert error["type"] == "rate_limit_exceeded" and "key slow: requests per minute (2)" in error["message"]
        assert model.calls == 2
        assert (await ask(c, "a1")).status_code == 200  # other keys go on


async def test_a_team_tpm_is_shared_by_its_keys_and_settled_on_real_usage(make_app: Any, model: ScriptedModel) -> None:
    app, limiter = make_app(LimitsConfig(context_tokens=0, output_tokens=10, teams={"alpha": TeamLimits(tpm=300)}))
    async with serving(app) as c:
        r = await ask(c, "a1")
        assert r.status_code == 200, r.text
        used = r.json()["tokens_in"] + r.json()["tokens_out"]
        reserved = limiter.estimate(QUESTION)
        assert used > reserved  # the context was bigger than the estimate: the difference is charged
        remaining = 300 - used
        r = await ask(c, "a2")
        if remaining >= reserved:
            assert r.status_code == 200
        r = await ask(c, "a2")
        assert r.status_code == 429 and "team alpha: tokens per minute" in r.json()["error"]["message"]
        assert r.headers["x-ratelimit-remaining-tokens"] == "0" and int(r.headers["retry-after"]) >= 1
        assert (await ask(c, "b1")).status_code == 200  # the noisy neighbour's team only


async def test_concurrent_requests_cannot_slip_past_the_tpm(make_app: Any, model: ScriptedModel) -> None:
    reserve = LimitsConfig(context_tokens=0, output_tokens=10).output_tokens + 8  # question + answer allowance
    app, limiter = make_app(LimitsConfig(context_tokens=0, output_tokens=10, teams={"alpha": TeamLimits(tpm=100)}))
    assert limiter.estimate(QUESTION) == reserve + (limiter.estimate(QUESTION) - reserve)
    admitted = 100 // limiter.estimate(QUESTION)
    async with serving(app) as c:
        responses = await asyncio.gather(*(ask(c, "a1") for _ in range(30)))
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) <= admitted and statuses.count(200) >= 1
    assert set(statuses) == {200, 429} and model.calls == statuses.count(200)


async def test_team_daily_tokens_429_and_dollars_402_other_teams_unaffected(make_app: Any) -> None:
    config = LimitsConfig(
        context_tokens=0,
        output_tokens=10,
        teams={"alpha": TeamLimits(daily_dollars=0.01), "gamma": TeamLimits(daily_tokens=60)},
    )
    app, limiter = make_app(config)
    async with serving(app) as c:
        held = await limiter.reserve(PRINCIPALS["a1"], 10)
        await limiter.settle(held, 10, cost=0.02)  # what a priced model would have cost
        r = await ask(c, "a2")
        assert r.status_code == 402 and r.json()["error"]["type"] == "insufficient_quota"
        assert int(r.headers["retry-after"]) >= 1
        assert (await ask(c, "tight")).status_code == 200  # uses more than 60 tokens of gamma's day
        r = await ask(c, "slow")
        assert r.status_code == 429 and "tokens per day" in r.json()["error"]["message"]
        assert r.headers["x-ratelimit-remaining-tokens"] == "0" and int(r.headers["retry-after"]) > 60
        assert (await ask(c, "b1")).status_code == 200


async def test_chat_reserves_max_tokens_and_answers_with_the_remaining_headers(make_app: Any) -> None:
    app, limiter = make_app(LimitsConfig(context_tokens=0, output_tokens=10, teams={"alpha": TeamLimits(tpm=10_000)}))
    async with serving(app) as c:
        r = await c.post("/v1/chat/completions", **chat("a1", max_tokens=5000))
        assert r.status_code == 200, r.text
        assert int(r.headers["x-ratelimit-remaining-tokens"]) <= 10_000 - 5000
        r = await c.post("/v1/chat/completions", **chat("a1", max_tokens=9990))  # settled, but not that much
        assert r.status_code == 429 and r.headers["x-ratelimit-remaining-tokens"]


async def test_a_stream_that_outruns_its_budget_is_cut_with_an_error_event(make_app: Any) -> None:
    app, limiter = make_app(LimitsConfig(context_tokens=0, output_tokens=10))
    assert limiter.estimate(QUESTION, max_tokens=1) + 3 == 12  # the key's tpm: 3 tokens to stream
    async with serving(app) as c:
        r = await c.post("/v1/chat/completions", **chat("stream", stream=True, max_tokens=1))
        assert r.status_code == 200
        got = events(r.text)
        name, data = got[-1]
        assert name == "error" and data["error"]["type"] == "rate_limit_exceeded", got[-1]
        assert all(d != "[DONE]" for _, d in got)
        text = "".join(d["choices"][0]["delta"].get("content") or "" for n, d in got[:-1] if n is None)
        assert len(text) < len(ANSWER)  # the piece the budget could not cover never went out
        r = await c.post("/v1/chat/completions", **chat("stream", stream=True, max_tokens=1))
        assert r.status_code == 429  # a plain 429 before any model call


async def test_a_stream_within_budget_completes_and_settles(make_app: Any) -> None:
    config = LimitsConfig(context_tokens=0, output_tokens=10, teams={"alpha": TeamLimits(tpm=5000)})
    app, limiter = make_app(config, store=MemoryStore(Clock()))  # a stopped clock: no refill
    async with serving(app) as c:
        r = await c.post("/v1/chat/completions", **chat("a1", stream=True, stream_options={"include_usage": True}))
        assert r.status_code == 200 and events(r.text)[-1][1] == "[DONE]"
        usage = events(r.text)[-2][1]["usage"]
    held = await limiter.reserve(PRINCIPALS["a2"], 0)
    assert held.levels[0] == 5000 - usage["total_tokens"]  # charged the real usage, not the estimate


class FlakyStore:
    def __init__(self) -> None:
        self.down = False
        self.inner = MemoryStore()

    async def apply(self, mode: Literal["reserve", "settle"], items: Sequence[tuple[Spec, float]]) -> Outcome:
        if self.down:
            raise ConnectionError("Connection refused")
        return await self.inner.apply(mode, items)

    async def aclose(self) -> None:
        return None


@pytest.mark.parametrize("failure", ["closed", "open"])
async def test_an_unreachable_store_fails_by_policy_and_says_so_in_metrics(
    make_app: Any, model: ScriptedModel, failure: str
) -> None:
    store = FlakyStore()
    app, limiter = make_app(LimitsConfig(teams={"alpha": TeamLimits(rpm=100)}), store=store, failure=failure)
    async with serving(app) as c:
        assert (await ask(c, "a1")).status_code == 200
        store.down = True
        r = await ask(c, "a1")
        if failure == "closed":
            assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1 and model.calls == 1
            assert "rate limiter is unavailable" in r.json()["error"]["message"]
        else:
            assert r.status_code == 200 and model.calls == 2
        assert "workbench_limiter_degraded 1.0" in (await c.get("/metrics")).text
        store.down = False
        assert (await ask(c, "a1")).status_code == 200
        assert "workbench_limiter_degraded 0.0" in (await c.get("/metrics")).text


class CountingModel(ScriptedModel):
    """A model with a tokenizer of its own: one token per character."""

    def count_tokens(self, text: str) -> int | None:
        return len(text)


async def test_the_prompt_is_reserved_by_the_models_own_tokenizer(make_session: Any, make_served: Any) -> None:
    limiter = Limiter(LimitsConfig(context_tokens=0, output_tokens=10, teams={"alpha": TeamLimits(tpm=1000)}))
    served = make_served(make_session(fakes={"extractive": CountingModel([ANSWER], repeat_last=True)}))
    async with serving(create_app(served, authenticate=test_authenticate, limiter=limiter)) as c:
        r = await ask(c, "a1")
    assert r.status_code == 200, r.text
    # Reserved: len(QUESTION) characters + 10 for the answer; the word estimate would be 8 + 10.
    assert r.headers["x-ratelimit-remaining-tokens"] == str(1000 - len(QUESTION) - 10)
    assert limiter.estimate(QUESTION) == len(QUESTION) + 10
