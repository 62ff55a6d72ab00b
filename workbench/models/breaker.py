"""A per-endpoint circuit breaker over a sliding window of recent calls.

closed ──(failure rate >= threshold over >= min_calls)──> open
open ──(cooldown elapsed, next call)──> half_open (one probe call at a time)
half_open ──probe succeeds──> closed      half_open ──probe fails──> open
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Literal

from workbench.core.schema import BreakerConfig
from workbench.models._errors import CircuitOpen

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Call `before_call()` before each attempt, then `record_success()` or `record_failure()`.

    `clock` is injectable (monotonic seconds) so tests can step time instead of sleeping.
    """

    def __init__(self, endpoint: str, config: BreakerConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.endpoint = endpoint
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._window: deque[bool] = deque(maxlen=config.window)  # True = failure
        self._state: BreakerState = "closed"
        self._opened_at = 0.0
        self._probe_in_flight = False

    @property
    def state(self) -> BreakerState:
        with self._lock:
            if self._state == "open" and self._cooled_down():
                return "half_open"
            return self._state

    def _cooled_down(self) -> bool:
        return self._clock() - self._opened_at >= self.config.cooldown_s

    def failure_rate(self) -> float:
        with self._lock:
            return sum(self._window) / len(self._window) if self._window else 0.0

    def before_call(self) -> None:
        """Raise `CircuitOpen` unless a call may go through now."""
        with self._lock:
            if self._state == "open":
                if not self._cooled_down():
                    raise CircuitOpen(self.endpoint)
                self._state = "half_open"
            if self._state == "half_open":
                if self._probe_in_flight:
                    raise CircuitOpen(self.endpoint)
                self._probe_in_flight = True

    def record_success(self) -> None:
        with self._lock:
            if self._state == "half_open":
                self._state = "closed"
                self._window.clear()
                self._probe_in_flight = False
                return
            self._window.append(False)

    def record_failure(self) -> None:
        with self._lock:
            if self._state == "half_open":
                self._trip()
                return
            self._window.append(True)
            window = self._window
            if len(window) >= self.config.min_calls and sum(window) / len(window) >= self.config.failure_rate:
                self._trip()

    def _trip(self) -> None:
        self._state = "open"
        self._opened_at = self._clock()
        self._probe_in_flight = False
        self._window.clear()

    def release(self) -> None:
        """Forget an attempt that ended without an outcome (cancelled), freeing the probe slot."""
        with self._lock:
            self._probe_in_flight = False
