"""`RedisStore`: the limits shared by every worker and replica pointed at one Redis.

Each reserve or settle is one `EVALSHA` of the script in `_redis_scripts.py`, so concurrent
requests from any number of processes cannot both take the last tokens of a bucket. The
client never retries a command on its own (a retried settle could count twice); a failed
call raises and the `Limiter` applies its failure policy. A refused connection fails at once;
the 2 s timeout only bounds a hung Redis (shorter ones fired under load, while a busy event
loop delayed reading the reply).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any, Literal

from workbench.serve.limits._redis_scripts import APPLY
from workbench.serve.limits.store import Outcome, Spec

PREFIX = "workbench:limits:"


class RedisStore:
    def __init__(self, url: str, *, timeout_s: float = 2.0, prefix: str = PREFIX) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.prefix = prefix
        # One client per event loop: uvicorn's loop, or a test's.
        self._clients: dict[int, tuple[Any, Any]] = {}

    def _client(self) -> tuple[Any, Any]:
        loop = id(asyncio.get_running_loop())
        found = self._clients.get(loop)
        if found is None:
            from redis.asyncio import Redis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            client = Redis.from_url(
                self.url,
                socket_timeout=self.timeout_s,
                socket_connect_timeout=self.timeout_s,
                retry=Retry(NoBackoff(), 0),
                retry_on_timeout=False,
                decode_responses=True,
            )
            found = self._clients[loop] = (client, client.register_script(APPLY))
        return found

    async def apply(self, mode: Literal["reserve", "settle"], items: Sequence[tuple[Spec, float]]) -> Outcome:
        client, script = self._client()
        keys = [self.prefix + spec.key for spec, _ in items]
        args: list[Any] = [mode]
        for spec, amount in items:
            args += ["b" if spec.kind == "bucket" else "d", repr(float(spec.limit)), repr(float(amount))]
        try:
            reply = await script(keys=keys, args=args)
        except _connection_errors():
            # A Redis that went away leaves the idle pooled connections dead, and the pool's
            # checkout check misses a reset one: each would fail once more after Redis is back
            # (a 503 and a flapping degraded gauge after recovery). Drop them now.
            with contextlib.suppress(Exception):
                await client.connection_pool.disconnect(inuse_connections=False)
            raise
        ok, failed, wait, *levels = reply
        return Outcome(bool(int(ok)), int(failed), float(wait), tuple(float(v) for v in levels))

    async def aclose(self) -> None:
        loop = id(asyncio.get_running_loop())
        found = self._clients.pop(loop, None)
        if found is not None:
            await found[0].aclose()


def _connection_errors() -> tuple[type[Exception], ...]:
    from redis.exceptions import ConnectionError, TimeoutError

    return ConnectionError, TimeoutError, OSError
