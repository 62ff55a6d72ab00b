"""Two real `serve` processes (uvicorn) sharing one real `redis-server` admit at most the limit
between them, under concurrent load, and every refusal says when to retry."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import REPO
from tests.serve import test_serve_integration as served
from workbench.testing.redis_server import RedisServer, redis_server
from workbench.testing.workbench_server import WorkbenchServer as Server

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]

bundle = served.bundle  # the exported bundle of the serve integration tests (module-scoped)
QUESTION = served.QUESTION
RPM = 30


@pytest.fixture
def replicas(bundle: Path, tmp_path: Path) -> Iterator[tuple[list[Server], RedisServer]]:
    shutil.rmtree(bundle / "var", ignore_errors=True)
    limits = tmp_path / "limits.yaml"
    limits.write_text(yaml.safe_dump({"teams": {"anonymous": {"rpm": RPM}}}))  # no auth: one shared caller
    with redis_server() as redis:
        args = ("--limits", str(limits), "--redis", redis.url)
        servers = [Server(bundle, *args, cwd=REPO) for _ in range(2)]
        try:
            for s in servers:
                s.wait_ready()
            yield servers, redis
        finally:
            for s in servers:
                s.stop()


def test_two_serve_processes_sharing_redis_admit_at_most_the_limit(
    replicas: tuple[list[Server], RedisServer],
) -> None:
    servers, _ = replicas

    async def load() -> tuple[list[httpx.Response], float]:
        async with httpx.AsyncClient(timeout=60) as client:
            started = time.monotonic()
            calls = [client.post(f"{s.url}/v1/ask", json={"question": QUESTION}) for s in servers for _ in range(40)]
            responses = await asyncio.gather(*calls)
            return responses, time.monotonic() - started

    responses, elapsed = asyncio.run(load())
    statuses = [r.status_code for r in responses]
    admitted = statuses.count(200)
    bound = RPM * (1 + elapsed / 60)  # the burst, plus what the bucket refilled meanwhile
    print(f"two replicas admitted {admitted} of {len(statuses)} in {elapsed:.2f} s (bound {bound:.1f})")
    assert set(statuses) == {200, 429}, [r.text for r in responses if r.status_code not in (200, 429)][:2]
    assert RPM * 0.9 <= admitted <= bound * 1.01
    for r in responses:
        if r.status_code == 429:
            assert int(r.headers["retry-after"]) >= 1 and r.headers["x-ratelimit-remaining-requests"] == "0"
    by_server = [statuses[:40].count(429), statuses[40:].count(429)]
    assert all(n > 0 for n in by_server)  # both replicas refuse: they count together
