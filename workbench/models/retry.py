"""Retries with capped exponential backoff and jitter, for retryable provider errors only.

`jitter` in the config blends the two usual schemes: 0 waits exactly the capped exponential
delay, 1 is "full jitter" (uniform in [0, delay]), values between keep `(1 - jitter)` of the
delay fixed and randomise the rest.

A server's Retry-After (`exc.retry_after`, seconds, set on `RateLimited`) is honoured: the next
attempt never comes sooner. If it asks for longer than `max_delay_s`, the longest this endpoint
may wait, retrying ends there and the error goes to the caller (the pool then tries fallbacks).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from workbench.core.errors import ProviderError
from workbench.core.schema import RetryConfig

log = logging.getLogger(__name__)
T = TypeVar("T")

Sleep = Callable[[float], None]
AsyncSleep = Callable[[float], Awaitable[None]]


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and bool(getattr(exc, "retryable", False))


def backoff_delay(attempt: int, config: RetryConfig, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based)."""
    cap = min(config.max_delay_s, config.base_delay_s * 2 ** (attempt - 1))
    fixed = cap * (1 - config.jitter)
    return fixed + (rng or random).uniform(0, cap - fixed)


def _delay_for(exc: BaseException, attempt: int, config: RetryConfig, rng: random.Random | None) -> float | None:
    """Seconds to wait before the next attempt, or None if the server asks for more than the cap."""
    delay = backoff_delay(attempt, config, rng)
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, int | float) and retry_after > 0:
        if retry_after > config.max_delay_s:
            log.info(
                "server asks to retry after %gs, beyond max_delay_s=%gs: not retrying", retry_after, config.max_delay_s
            )
            return None
        delay = max(delay, float(retry_after))
    return delay


def retry(
    fn: Callable[[], T],
    config: RetryConfig,
    *,
    sleep: Sleep = time.sleep,
    rng: random.Random | None = None,
) -> tuple[T, int]:
    """Call `fn` until it succeeds or attempts run out; return (result, attempts used).

    Sync code only: it blocks the calling thread between attempts."""
    attempt = 1
    while True:
        try:
            return fn(), attempt
        except ProviderError as exc:
            if not is_retryable(exc) or attempt >= config.max_attempts:
                raise
            delay = _delay_for(exc, attempt, config, rng)
            if delay is None:
                raise
            log.debug("attempt %d failed (%s); retrying in %.3fs", attempt, exc, delay)
        sleep(delay)
        attempt += 1


async def aretry(
    fn: Callable[[], Awaitable[T]],
    config: RetryConfig,
    *,
    sleep: AsyncSleep = asyncio.sleep,
    rng: random.Random | None = None,
) -> tuple[T, int]:
    """The async twin of `retry`: waits with `await sleep(...)`, never blocking the loop."""
    attempt = 1
    while True:
        try:
            return await fn(), attempt
        except ProviderError as exc:
            if not is_retryable(exc) or attempt >= config.max_attempts:
                raise
            delay = _delay_for(exc, attempt, config, rng)
            if delay is None:
                raise
            log.debug("attempt %d failed (%s); retrying in %.3fs", attempt, exc, delay)
        await sleep(delay)
        attempt += 1
