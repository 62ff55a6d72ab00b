"""Where the buckets live: `MemoryStore` (one process, lock-protected) or `RedisStore`.

A limit is a `Spec`: a token bucket (`kind="bucket"`: holds at most `limit`, refills `limit`
per minute) or a daily counter (`kind="daily"`: at most `limit` used per UTC day). A store
applies a list of (spec, amount) pairs in one atomic step:

- `reserve`: take every amount, or none of them if any spec lacks it (a daily counter already
  at its limit refuses even an amount of 0: that is how a spent dollar budget refuses);
- `settle`: add the amounts (negative = refund) unconditionally; a bucket may go into debt,
  so usage beyond a reservation delays the key's next requests.

Both stores run the same algorithm (`apply_one`, mirrored in Lua in `_redis_scripts.py`).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

DAY_S = 86400.0


@dataclass(frozen=True)
class Spec:
    key: str
    kind: Literal["bucket", "daily"]
    limit: float


@dataclass(frozen=True)
class Outcome:
    """`ok`: whether a reserve was admitted; `failed`: the index of the first spec that refused
    (-1 if none); `retry_after`: seconds until it would admit; `levels`: what each spec has left
    (after the step if admitted, else before it)."""

    ok: bool
    failed: int
    retry_after: float
    levels: tuple[float, ...]


class Store(Protocol):
    async def apply(self, mode: Literal["reserve", "settle"], items: Sequence[tuple[Spec, float]]) -> Outcome: ...

    async def aclose(self) -> None: ...


def _refill(spec: Spec, value: float | None, stamp: float | None, now: float) -> float:
    if value is None or stamp is None:
        return spec.limit
    return min(spec.limit, value + max(0.0, now - stamp) * spec.limit / 60.0)


def _wait(spec: Spec, level: float, amount: float, now: float) -> float:
    if spec.kind == "daily":
        return DAY_S - math.fmod(now, DAY_S)
    if amount > spec.limit:  # never fits: a full minute, then the client should ask for less
        return 60.0
    return (amount - level) * 60.0 / spec.limit


class MemoryStore:
    """The in-process store: a dict under a lock. Right for one worker; with several workers
    or replicas each would count alone, so use `RedisStore` there."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        # bucket: key -> (level, stamp); daily: key -> (used, day)
        self._state: dict[str, tuple[float, float]] = {}

    async def apply(self, mode: Literal["reserve", "settle"], items: Sequence[tuple[Spec, float]]) -> Outcome:
        return self.apply_sync(mode, items)

    def apply_sync(self, mode: Literal["reserve", "settle"], items: Sequence[tuple[Spec, float]]) -> Outcome:
        with self._lock:
            now = self._clock()
            day = math.floor(now / DAY_S)
            levels: list[float] = []
            for i, (spec, amount) in enumerate(items):
                level = self._level(spec, now, day)
                levels.append(level)
                if mode == "reserve" and _refuses(spec, level, amount):
                    return Outcome(False, i, _wait(spec, level, amount, now), tuple(levels + self._rest(items, i, now)))
            after = []
            for (spec, amount), level in zip(items, levels, strict=True):
                new = min(spec.limit, level - amount)
                self._state[spec.key] = (new, now) if spec.kind == "bucket" else (spec.limit - new, float(day))
                after.append(new)
            return Outcome(True, -1, 0.0, tuple(after))

    def _level(self, spec: Spec, now: float, day: int) -> float:
        value, stamp = self._state.get(spec.key, (None, None))
        if spec.kind == "bucket":
            return _refill(spec, value, stamp, now)
        used = value if value is not None and stamp == day else 0.0
        return spec.limit - used

    def _rest(self, items: Sequence[tuple[Spec, float]], failed: int, now: float) -> list[float]:
        day = math.floor(now / DAY_S)
        return [self._level(spec, now, day) for spec, _ in items[failed + 1 :]]

    async def aclose(self) -> None:
        return None


def _refuses(spec: Spec, level: float, amount: float) -> bool:
    if spec.kind == "daily":
        return level <= 0 or amount > level
    return amount > 0 and amount > level
