"""`JobQuota`: the rate limits and team quotas applied to jobs, so a queue is no way around them.

- At submission (`admit`), a job counts as one request against the key's and team's requests
  per minute, and is refused at once (429, or 402 for dollars) if the team's daily tokens or
  dollars are already spent.
- As it runs, each question of a batch is charged like a `/v1/ask` request: reserved before its
  model call and settled on real usage after. A per-minute refusal makes the worker wait the
  Retry-After (a job is asynchronous: it is throttled, not failed) for up to `max_wait_s` per
  question; a longer wait (a spent daily quota) stops the batch, and its remaining questions are
  reported as not run, with the reason.
- An evaluation job cannot be charged question by question (the session runs the dataset), so
  it is charged its real usage when it ends; the buckets may go into debt, which delays the
  team's next requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from workbench.core.state import RequestState
from workbench.serve.limits import Limiter
from workbench.serve.principal import Principal

DEFAULT_MAX_WAIT_S = 120.0

Sleep = Callable[[float], Awaitable[Any]]
Ask = Callable[[str], Awaitable[RequestState]]


class JobQuota:
    def __init__(
        self, limiter: Limiter, *, max_wait_s: float = DEFAULT_MAX_WAIT_S, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.limiter = limiter
        self.max_wait_s = max_wait_s
        self._sleep = sleep

    async def admit(self, request: Any, principal: Principal, body: Any) -> None:
        """Raises `QuotaExceeded` / `PaymentRequired` (or `LimiterUnavailable`) to refuse a job."""
        held = await self.limiter.reserve(principal, 0)
        await self.limiter.settle(held, 0)

    async def ask(self, principal: Principal, question: str, ask: Ask) -> RequestState:
        """`ask(question)` within `principal`'s limits: waits out per-minute refusals (up to
        `max_wait_s` in all), raises the refusal past that."""
        from workbench.core.errors import PaymentRequired, QuotaExceeded

        waited = 0.0
        while True:
            try:
                async with self.limiter.hold(principal, self.limiter.estimate(question)) as held:
                    state = await ask(question)
                    await self.limiter.settle_state(held, state)
                    return state
            except QuotaExceeded as exc:
                if isinstance(exc, PaymentRequired) or waited + exc.retry_after > self.max_wait_s:
                    raise
                waited += exc.retry_after
                await self._sleep(exc.retry_after)

    async def charge(self, principal: Principal, tokens: int, cost: float) -> None:
        """Count usage that ran without a reservation (an evaluation job): never refused, since
        the work is done; it goes against the buckets and daily totals as it is."""
        from workbench.serve.limits.limiter import Reservation

        await self.limiter.settle(Reservation(principal, 0, self.limiter.limits(principal)), tokens, cost)
