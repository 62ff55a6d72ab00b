"""The limiter against a real `redis-server` on loopback: limits shared by processes, at most
the limit admitted under concurrent load, and the failure policy across a Redis restart."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import Request

from tests.serve.conftest import serving
from workbench.core.errors import LimiterUnavailable, QuotaExceeded
from workbench.serve.app import create_app
from workbench.serve.limits import Limiter, LimitsConfig, RedisStore, TeamLimits
from workbench.serve.principal import Principal
from workbench.testing.models import ScriptedModel
from workbench.testing.redis_server import RedisServer, redis_server

pytestmark = pytest.mark.skipif(
    __import__("shutil").which("redis-server") is None, reason="redis-server is not installed"
)

RPM, TPM = 600, 60_000
PROCESSES, ATTEMPTS, CONCURRENCY = 4, 400, 32


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


def _hammer(url: str, team: str, seed: int, go: Any, out: Any) -> None:
    """One replica: ATTEMPTS reserves, CONCURRENCY at a time, once `go` is set; puts (requests,
    tokens admitted, first and last reserve's wall time)."""

    async def main() -> tuple[int, int, float, float]:
        limiter = Limiter(LimitsConfig(teams={team: TeamLimits(rpm=RPM, tpm=TPM)}), RedisStore(url, timeout_s=5))
        principal = Principal(f"key{seed}", team)
        admitted = [0, 0]
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(i: int) -> None:
            tokens = 50 + (i * 37 + seed * 11) % 150
            async with gate:
                try:
                    await limiter.reserve(principal, tokens)
                except QuotaExceeded:
                    return
                admitted[0] += 1
                admitted[1] += tokens

        await limiter.reserve(Principal("warm", "warm-up", rpm=10**9), 0)  # connect before the clock starts
        go.wait()
        started = time.time()
        await asyncio.gather(*(one(i) for i in range(ATTEMPTS)))
        ended = time.time()
        await limiter.aclose()
        return admitted[0], admitted[1], started, ended

    out.put(asyncio.run(main()))


def test_replicas_sharing_one_redis_admit_at_most_the_limit(redis: RedisServer) -> None:
    ctx = multiprocessing.get_context("spawn")
    out, go = ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_hammer, args=(redis.url, "shared", seed, go, out)) for seed in range(PROCESSES)]
    for p in procs:
        p.start()
    time.sleep(0.2)
    go.set()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    # The buckets refill while the replicas run: the limit is the burst plus that refill.
    elapsed = max(r[3] for r in results) - min(r[2] for r in results)
    requests = sum(r[0] for r in results)
    tokens = sum(r[1] for r in results)
    assert all(r[0] > 0 for r in results)  # every replica got some: they share, not split
    request_bound = RPM * (1 + elapsed / 60)
    token_bound = TPM * (1 + elapsed / 60)
    over = max(requests / request_bound, tokens / token_bound) - 1
    print(f"admitted {requests} requests / {tokens} tokens in {elapsed:.2f} s; over-admission {over:+.2%}")
    assert over <= 0.01
    assert requests < PROCESSES * ATTEMPTS  # the limit bit


async def test_the_limiter_fails_closed_while_redis_is_down_and_recovers(redis: RedisServer) -> None:
    limiter = Limiter(LimitsConfig(teams={"t": TeamLimits(rpm=100)}), RedisStore(redis.url), failure="closed")
    seen: list[bool] = []
    limiter.watch(seen.append)
    principal = Principal("k", "t")
    await limiter.reserve(principal, 10)
    redis.stop()
    with pytest.raises(LimiterUnavailable):
        await limiter.reserve(principal, 10)
    assert limiter.degraded
    redis.start()
    held = await limiter.reserve(principal, 10)
    assert not limiter.degraded and seen == [False, True, False]
    assert held.headers()["x-ratelimit-remaining-requests"] == "99"  # a restart without persistence: fresh
    await limiter.aclose()


async def test_served_app_with_redis_503s_then_recovers_and_the_gauge_follows(
    redis: RedisServer, make_session: Any, make_served: Any
) -> None:
    model = ScriptedModel(["Sky picked up the remaining four packages."], repeat_last=True)

    async def authenticate(request: Request) -> None:
        request.state.principal = Principal("k", "t")

    limiter = Limiter(LimitsConfig(teams={"t": TeamLimits(rpm=2)}), RedisStore(redis.url))
    app = create_app(make_served(make_session(fakes={"extractive": model})), authenticate=authenticate, limiter=limiter)
    body = {"question": "Who picked up the remaining four packages?"}
    async with serving(app) as c:
        assert (await c.post("/v1/ask", json=body)).status_code == 200
        redis.stop()
        r = await c.post("/v1/ask", json=body)
        assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1 and model.calls == 1
        assert "workbench_limiter_degraded 1.0" in (await c.get("/metrics")).text
        redis.start()
        assert (await c.post("/v1/ask", json=body)).status_code == 200
        assert (await c.post("/v1/ask", json=body)).status_code == 200
        r = await c.post("/v1/ask", json=body)
        assert r.status_code == 429 and r.headers["x-ratelimit-remaining-requests"] == "0"
        assert "workbench_limiter_degraded 0.0" in (await c.get("/metrics")).text
