import random

import pytest

from workbench.core.errors import ProviderError, ProviderTimeout, RateLimited
from workbench.core.schema import RetryConfig
from workbench.models import ProviderRejected, aretry, backoff_delay, retry


class Flaky:
    def __init__(self, errors):
        self.errors = list(errors)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def test_backoff_without_jitter_doubles_up_to_the_cap():
    cfg = RetryConfig(base_delay_s=0.1, max_delay_s=0.5, jitter=0)
    assert [backoff_delay(n, cfg) for n in (1, 2, 3, 4, 5)] == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])


def test_full_jitter_stays_within_zero_and_the_delay():
    cfg = RetryConfig(base_delay_s=1, max_delay_s=8, jitter=1)
    rng = random.Random(7)
    delays = [backoff_delay(3, cfg, rng) for _ in range(200)]
    assert all(0 <= d <= 4 for d in delays)
    assert min(delays) < 1 and max(delays) > 3


def test_partial_jitter_keeps_the_fixed_share():
    cfg = RetryConfig(base_delay_s=1, max_delay_s=8, jitter=0.25)
    rng = random.Random(1)
    assert all(3 <= backoff_delay(3, cfg, rng) <= 4 for _ in range(100))


def test_retries_retryable_errors_until_success():
    slept: list[float] = []
    fn = Flaky([ProviderTimeout("t"), RateLimited("r")])
    result, attempts = retry(fn, RetryConfig(max_attempts=3, base_delay_s=0.1, jitter=0), sleep=slept.append)
    assert (result, attempts, fn.calls) == ("done", 3, 3)
    assert slept == pytest.approx([0.1, 0.2])


def test_gives_up_after_max_attempts():
    slept: list[float] = []
    fn = Flaky([ProviderError("a")] * 5)
    with pytest.raises(ProviderError, match="a"):
        retry(fn, RetryConfig(max_attempts=3, base_delay_s=0), sleep=slept.append)
    assert fn.calls == 3 and len(slept) == 2


def test_non_retryable_error_is_raised_at_once():
    slept: list[float] = []
    fn = Flaky([ProviderRejected("bad request")])
    with pytest.raises(ProviderRejected):
        retry(fn, RetryConfig(max_attempts=5), sleep=slept.append)
    assert fn.calls == 1 and slept == []


def test_other_exceptions_are_not_retried():
    fn = Flaky([ValueError("bug")])
    with pytest.raises(ValueError):
        retry(fn, RetryConfig(max_attempts=5), sleep=lambda s: None)
    assert fn.calls == 1


def rate_limited(after: float) -> RateLimited:
    exc = RateLimited("slow down")
    exc.retry_after = after  # type: ignore[attr-defined]
    return exc


def test_retry_after_is_honoured_within_the_cap():
    slept: list[float] = []
    config = RetryConfig(base_delay_s=0.1, max_delay_s=2.0, jitter=0)
    retry(Flaky([rate_limited(1.5), rate_limited(0.01)]), config, sleep=slept.append)
    # The server's wait when it is longer than the backoff, the backoff when it is longer.
    assert slept == [1.5, 0.2]


def test_retry_after_beyond_the_cap_ends_the_retries_instead_of_calling_early():
    fn = Flaky([rate_limited(3.0)])
    slept: list[float] = []
    with pytest.raises(RateLimited):
        retry(fn, RetryConfig(base_delay_s=0.1, max_delay_s=2.0, jitter=0), sleep=slept.append)
    assert fn.calls == 1 and slept == []


async def test_async_retry_awaits_the_injected_sleep():
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    flaky = Flaky([ProviderTimeout("t"), ProviderTimeout("t")])

    async def fn():
        return flaky()

    result, attempts = await aretry(fn, RetryConfig(max_attempts=4, base_delay_s=0.5, jitter=0), sleep=sleep)
    assert (result, attempts) == ("done", 3)
    assert slept == [0.5, 1.0]


async def test_async_non_retryable():
    calls = 0

    async def fn():
        nonlocal calls
        calls += 1
        raise ProviderRejected("no")

    async def sleep(s: float) -> None:
        raise AssertionError("must not sleep")

    with pytest.raises(ProviderRejected):
        await aretry(fn, RetryConfig(max_attempts=3), sleep=sleep)
    assert calls == 1
