"""`Limiter`: token buckets per key and per team, in requests and tokens per minute, and daily
team quotas in tokens and dollars. Reserve before the model call, settle after it.

- `reserve(principal, tokens)` takes one request and `tokens` (the estimate: the question, an
  allowance for the retrieved context, and `max_tokens` or the configured answer allowance)
  from every bucket that applies, atomically: all or nothing, so concurrent requests cannot
  slip past a limit. A refusal raises `QuotaExceeded` (429) or `PaymentRequired` (402) before
  any model runs.
- `extend(reservation, tokens)` takes more as a stream outgrows its reservation; a refusal
  cuts the stream.
- `settle(reservation, tokens, cost)` replaces the estimate with the real usage: the
  difference is refunded or charged (a bucket may go into debt) and the cost is counted
  against the team's dollars.

When the store (Redis) is unreachable, `failure="closed"` refuses with `LimiterUnavailable`
(503) and `"open"` admits uncounted; either way `degraded` is True until a call succeeds again.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from workbench.core.errors import LimiterUnavailable, PaymentRequired, ProviderError, QuotaExceeded
from workbench.core.state import RequestState
from workbench.core.tokens import estimate_tokens
from workbench.serve.limits.config import LimitsConfig
from workbench.serve.limits.store import MemoryStore, Outcome, Spec, Store
from workbench.serve.principal import Principal

log = logging.getLogger(__name__)

Measure = Literal["requests", "tokens", "dollars"]
FailurePolicy = Literal["closed", "open"]
_NAMES = {"rpm": "requests per minute", "tpm": "tokens per minute", "daily_tokens": "tokens per day"}


@dataclass(frozen=True)
class Limit:
    spec: Spec
    measure: Measure
    label: str  # "team research: tokens per minute (60000)"


@dataclass
class Reservation:
    """What one request holds: `tokens` reserved so far, against `limits`. `counted` is False
    when nothing applies or the limiter failed open: settling it is a no-op."""

    principal: Principal
    tokens: int
    limits: tuple[Limit, ...] = ()
    levels: tuple[float, ...] = ()
    counted: bool = True
    settled: bool = field(default=False, repr=False)

    def headers(self) -> dict[str, str]:
        """The `x-ratelimit-*` headers, as OpenAI names them, of what is left after this request."""
        return _headers(self.limits, self.levels)


class _StoreDown(Exception):
    pass


class Limiter:
    def __init__(
        self, config: LimitsConfig | None = None, store: Store | None = None, *, failure: FailurePolicy = "closed"
    ) -> None:
        self.config = config or LimitsConfig()
        self.store: Store = store if store is not None else MemoryStore()
        self.failure = failure
        self.degraded = False
        # How the prompt's tokens are counted: the served model's own tokenizer once the app
        # knows it (`use_tokenizer`), else the estimate.
        self.count_tokens: Callable[[str], int] = estimate_tokens
        self._watchers: list[Callable[[bool], None]] = []

    def watch(self, callback: Callable[[bool], None]) -> None:
        """Call `callback(degraded)` now and whenever the store goes down or comes back."""
        self._watchers.append(callback)
        callback(self.degraded)

    def use_tokenizer(self, count: Callable[[str], int]) -> None:
        self.count_tokens = count

    def estimate(self, question: str, max_tokens: int | None = None) -> int:
        """Tokens to reserve: the question (by the model's tokenizer where it has one), the
        context allowance, and the answer's (`max_tokens`, or the configured allowance)."""
        answer = max_tokens if max_tokens is not None else self.config.output_tokens
        return self.count_tokens(question) + self.config.context_tokens + answer

    def limits(self, principal: Principal) -> tuple[Limit, ...]:
        found: list[Limit] = []
        key, team = principal.key_id, principal.team
        own = {"rpm": principal.rpm, "tpm": principal.tpm, "daily_tokens": principal.daily_tokens}
        theirs = self.config.team(team)
        shared = {"rpm": theirs.rpm, "tpm": theirs.tpm, "daily_tokens": theirs.daily_tokens}
        for scope, name, values in (("key", key, own), ("team", team, shared)):
            for what, limit in values.items():
                if limit is None:
                    continue
                kind: Literal["bucket", "daily"] = "daily" if what == "daily_tokens" else "bucket"
                measure: Measure = "requests" if what == "rpm" else "tokens"
                spec = Spec(f"{scope}:{name}:{what}", kind, float(limit))
                found.append(Limit(spec, measure, f"{scope} {name}: {_NAMES[what]} ({limit})"))
        if theirs.daily_dollars is not None:
            spec = Spec(f"team:{team}:daily_dollars", "daily", float(theirs.daily_dollars))
            found.append(Limit(spec, "dollars", f"team {team}: dollars per day ({theirs.daily_dollars:g})"))
        return tuple(found)

    async def reserve(self, principal: Principal, tokens: int) -> Reservation:
        limits = self.limits(principal)
        if not limits:
            return Reservation(principal, tokens, counted=False)
        amounts = {"requests": 1.0, "tokens": float(tokens), "dollars": 0.0}
        try:
            out = await self._apply("reserve", [(lim.spec, amounts[lim.measure]) for lim in limits])
        except _StoreDown:
            if self.failure == "open":
                return Reservation(principal, tokens, counted=False)
            raise LimiterUnavailable("the rate limiter is unavailable; retry later") from None
        if not out.ok:
            raise _refusal(limits, out)
        return Reservation(principal, tokens, limits, out.levels)

    async def extend(self, reservation: Reservation, tokens: int) -> None:
        """Take `tokens` more for a reservation that outgrew itself (a stream); raises
        `QuotaExceeded` if the key's or team's tokens do not allow them."""
        limits = tuple(lim for lim in reservation.limits if lim.measure == "tokens")
        if tokens <= 0 or not reservation.counted or not limits:
            reservation.tokens += max(tokens, 0)
            return
        try:
            out = await self._apply("reserve", [(lim.spec, float(tokens)) for lim in limits])
        except _StoreDown:
            if self.failure == "open":
                return
            raise LimiterUnavailable("the rate limiter is unavailable") from None
        if not out.ok:
            raise _refusal(limits, out)
        reservation.tokens += tokens

    async def settle(self, reservation: Reservation, tokens: int, cost: float = 0.0) -> None:
        """Count the real usage instead of the reservation (once; later calls are no-ops)."""
        if reservation.settled or not reservation.counted:
            reservation.settled = True
            return
        reservation.settled = True
        amounts = {"requests": 0.0, "tokens": float(tokens - reservation.tokens), "dollars": float(cost)}
        items = [(lim.spec, amounts[lim.measure]) for lim in reservation.limits if amounts[lim.measure]]
        if not items:
            return
        try:
            await self._apply("settle", items)
        except _StoreDown:
            log.warning("could not settle a request of key %s: the limiter store is down", reservation.principal.key_id)

    @contextlib.asynccontextmanager
    async def hold(self, principal: Principal, tokens: int) -> AsyncIterator[Reservation]:
        """Reserve `tokens` for the body of the `async with`; it should `settle` with the real
        usage. If it raises, `release` applies; if it never settles, the reservation stands."""
        reservation = await self.reserve(principal, tokens)
        try:
            yield reservation
        except BaseException as exc:
            await self.release(reservation, exc)
            raise

    async def settle_state(self, reservation: Reservation, state: RequestState) -> None:
        await self.settle(reservation, state.tokens_in + state.tokens_out, state.cost)

    async def release(self, reservation: Reservation, exc: BaseException) -> None:
        """Settle a request that failed: a provider failure used no tokens and is refunded;
        any other failure (a guard block after the answer) keeps what it reserved."""
        if isinstance(exc, ProviderError):
            await self.settle(reservation, 0)
        else:
            reservation.settled = True

    async def _apply(self, mode: Literal["reserve", "settle"], items: Sequence[tuple[Spec, float]]) -> Outcome:
        try:
            out = await self.store.apply(mode, items)
        except Exception as exc:  # a store that cannot answer, whatever its client raises
            self._mark(True, exc)
            raise _StoreDown from exc
        self._mark(False)
        return out

    def _mark(self, degraded: bool, exc: BaseException | None = None) -> None:
        if degraded == self.degraded:
            return
        self.degraded = degraded
        if degraded:
            log.error("rate limiter degraded (failing %s): %s: %s", self.failure, type(exc).__name__, exc)
        else:
            log.warning("rate limiter recovered")
        for callback in self._watchers:
            callback(degraded)

    async def aclose(self) -> None:
        await self.store.aclose()


def limiter_from(limits_file: str | None, redis_url: str | None, failure: str = "closed") -> Limiter:
    """The limiter of `serve`'s and `worker`'s options: the `--limits` file's team limits (or
    none), in process or shared in Redis; a bad limits file raises `ConfigError`."""
    from workbench.serve.limits.redis_store import RedisStore

    config = LimitsConfig.from_yaml(limits_file) if limits_file else LimitsConfig()
    store = RedisStore(redis_url) if redis_url else None
    return Limiter(config, store, failure="open" if failure == "open" else "closed")


def _headers(limits: Sequence[Limit], levels: Sequence[float]) -> dict[str, str]:
    out: dict[str, str] = {}
    for measure in ("requests", "tokens"):
        pairs = [(lim, lvl) for lim, lvl in zip(limits, levels, strict=False) if lim.measure == measure]
        if pairs:
            out[f"x-ratelimit-limit-{measure}"] = str(int(min(lim.spec.limit for lim, _ in pairs)))
            out[f"x-ratelimit-remaining-{measure}"] = str(max(0, math.floor(min(lvl for _, lvl in pairs))))
    return out


def _refusal(limits: Sequence[Limit], out: Outcome) -> QuotaExceeded:
    limit = limits[out.failed]
    headers = _headers(limits, out.levels)
    remaining = {k.rsplit("-", 1)[1]: int(v) for k, v in headers.items() if k.startswith("x-ratelimit-remaining-")}
    wait = max(1, math.ceil(out.retry_after))
    if limit.measure == "dollars":
        return PaymentRequired(f"quota exceeded: {limit.label} is spent", retry_after=wait, remaining=remaining)
    return QuotaExceeded(f"rate limit exceeded: {limit.label}", retry_after=wait, remaining=remaining)
