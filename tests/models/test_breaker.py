import pytest

from workbench.core.errors import ProviderUnavailable
from workbench.core.schema import BreakerConfig
from workbench.models import CircuitBreaker, CircuitOpen


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(**kw) -> tuple[CircuitBreaker, Clock]:
    clock = Clock()
    cfg = BreakerConfig(**{"failure_rate": 0.5, "window": 4, "min_calls": 4, "cooldown_s": 10, **kw})
    return CircuitBreaker("smol", cfg, clock=clock), clock


def call(breaker: CircuitBreaker, ok: bool) -> None:
    breaker.before_call()
    breaker.record_success() if ok else breaker.record_failure()


def test_stays_closed_below_min_calls():
    breaker, _ = make()
    for _ in range(3):
        call(breaker, ok=False)
    assert breaker.state == "closed"


def test_full_cycle_closed_open_half_open_closed():
    breaker, clock = make()
    for ok in (True, False, True, False):  # 50% over the window
        call(breaker, ok)
    assert breaker.state == "open"

    with pytest.raises(ProviderUnavailable, match="circuit open for endpoint smol"):
        breaker.before_call()

    clock.now += 9.9
    with pytest.raises(CircuitOpen):
        breaker.before_call()

    clock.now += 0.2
    assert breaker.state == "half_open"
    breaker.before_call()  # the probe
    with pytest.raises(CircuitOpen):  # only one probe at a time
        breaker.before_call()
    breaker.record_success()
    assert breaker.state == "closed"
    assert breaker.failure_rate() == 0.0
    call(breaker, ok=True)


def test_failed_probe_reopens_for_another_cooldown():
    breaker, clock = make(min_calls=2, window=2)
    call(breaker, False)
    call(breaker, False)
    assert breaker.state == "open"
    clock.now += 10
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state == "open"
    clock.now += 5
    with pytest.raises(CircuitOpen):
        breaker.before_call()
    clock.now += 5
    assert breaker.state == "half_open"


def test_sliding_window_forgets_old_failures():
    breaker, _ = make(window=4, min_calls=4, failure_rate=0.75)
    for ok in (False, False, True, True, True, False):
        call(breaker, ok)
    # the window now holds T, T, T, F -> 25% failures
    assert breaker.state == "closed"
    assert breaker.failure_rate() == 0.25


def test_release_frees_the_probe_slot():
    breaker, clock = make(min_calls=1, window=1)
    call(breaker, False)
    clock.now += 10
    breaker.before_call()
    breaker.release()
    breaker.before_call()
    breaker.record_success()
    assert breaker.state == "closed"


def test_circuit_open_is_not_retryable():
    assert CircuitOpen("x").retryable is False
