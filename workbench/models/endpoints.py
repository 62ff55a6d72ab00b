"""`EndpointPool`: named model endpoints with retries, a circuit breaker each, and fallbacks.

Providers are resolved through an explicit registry and instantiated on first use. A call to
endpoint `a` with `fallbacks: [b, c]` tries `a`, then `b`, then `c` (and their own fallbacks,
each endpoint at most once), each with its own retry policy and breaker.

`astream` walks the same chain while streaming, but falls back only before the first byte the
client has: once text is committed, a failure ends the call (see `astream`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from workbench.core.errors import ConfigError, ProviderError, ProviderTimeout, ProviderUnavailable
from workbench.core.protocols import ChatModel, Completion, GenerationRequest, PieceSink
from workbench.core.registry import Registry
from workbench.core.schema import ModelEndpoint
from workbench.core.state import ModelCall
from workbench.core.tokens import cost_of
from workbench.models._errors import one_line
from workbench.models._streaming import MidStream, SinkFailed, drain
from workbench.models.breaker import CircuitBreaker
from workbench.models.identity import OPERATIONAL, endpoint_identity
from workbench.models.identity import model_id as short_model_id
from workbench.models.retry import AsyncSleep, Sleep, aretry, is_retryable, retry

log = logging.getLogger(__name__)


def provider_registry() -> Registry:
    """A fresh provider registry; add your own with `.add(name, cls)`."""
    return Registry(
        "model provider",
        {
            "llama_cpp": "workbench.models.llama_cpp:LlamaCppModel",
            "openai_compat": "workbench.models.openai_compat:OpenAICompatModel",
            "extractive": "workbench.models.extractive:ExtractiveModel",
        },
    )


class EndpointPool:
    """Every model endpoint of a pipeline, called by name.

    `overrides` replaces the model behind an endpoint name (tests inject fakes this way); the
    endpoint's retry, breaker, cost and fallbacks from config still apply.
    """

    def __init__(
        self,
        models: Mapping[str, ModelEndpoint],
        overrides: Mapping[str, ChatModel] | None = None,
        *,
        registry: Registry | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = time.sleep,
        asleep: AsyncSleep = asyncio.sleep,
    ) -> None:
        self.configs: dict[str, ModelEndpoint] = dict(models)
        unknown = sorted(set(overrides or {}) - set(self.configs))
        if unknown:
            raise ConfigError(f"overrides for unknown model endpoint(s) {', '.join(unknown)}; valid: {self._valid()}")
        for name, cfg in self.configs.items():
            for fb in cfg.fallbacks:
                if fb not in self.configs:
                    raise ConfigError(f"unknown model endpoint {fb!r} in {name}.fallbacks; valid: {self._valid()}")
        self._models: dict[str, ChatModel] = dict(overrides or {})
        self._overridden = frozenset(overrides or {})
        self._registry = registry or provider_registry()
        self._breakers = {name: CircuitBreaker(name, cfg.breaker, clock) for name, cfg in self.configs.items()}
        self._sleep = sleep
        self._asleep = asleep
        self._lock = threading.Lock()
        self._identities: dict[tuple[str, bool], dict[str, Any]] = {}

    def _valid(self) -> str:
        return ", ".join(sorted(self.configs)) or "(none)"

    def _config(self, name: str) -> ModelEndpoint:
        try:
            return self.configs[name]
        except KeyError:
            raise ConfigError(f"unknown model endpoint {name!r}; valid: {self._valid()}") from None

    def model(self, name: str) -> ChatModel:
        """The model behind an endpoint, instantiated on first use."""
        config = self._config(name)
        with self._lock:
            if name not in self._models:
                self._models[name] = self._registry.resolve(config.provider)(config)
            return self._models[name]

    def breaker(self, name: str) -> CircuitBreaker:
        self._config(name)
        return self._breakers[name]

    def warm_up(self, names: list[str] | None = None) -> None:
        """Load the models behind `names` (default: all) and compute their identities, so the
        first cache key costs no file hashing."""
        for name in names or list(self.configs):
            warm = getattr(self.model(name), "warm_up", None)
            if warm is not None:
                warm()
            self._identity(name, answers_only=False)

    def chain(self, name: str) -> list[str]:
        """`name` then its fallbacks, breadth first, each endpoint once."""
        order, queue = [], [name]
        while queue:
            current = queue.pop(0)
            if current in order:
                continue
            order.append(current)
            queue.extend(self._config(current).fallbacks)
        return order

    def fingerprint(self, name: str) -> list[dict[str, Any]]:
        """What decides the outputs of a call to `name`, for stage cache keys: the name, config
        and implementation (`models.identity`) of every endpoint the call may use. Names count:
        the recorded `ModelCall`s carry them."""
        return [{"name": ep, **self._identity(ep, answers_only=False)} for ep in self.chain(name)]

    def identity(self, name: str) -> dict[str, Any]:
        """What decides endpoint `name`'s answers alone (no name, no fallbacks, no operational
        fields): the key of a cached value that is only an answer, such as a judgment."""
        return self._identity(name, answers_only=True)

    def _identity(self, name: str, *, answers_only: bool) -> dict[str, Any]:
        key = (name, answers_only)
        found = self._identities.get(key)
        if found is None:
            # Computed outside the lock: the first one hashes a GGUF file (a fraction of a second).
            config = self._config(name)
            override = self._models.get(name) if name in self._overridden else None
            if override is not None and self._builds(config, override):
                override = None
            found = endpoint_identity(config, override=override, answers_only=answers_only)
            with self._lock:
                found = self._identities.setdefault(key, found)
        return found

    def _builds(self, config: ModelEndpoint, model: ChatModel) -> bool:
        """Whether `model` is what this pool would build for `config` (a caller sharing a loaded
        model, not a fake): then it is named by its implementation, not as an override."""
        if type(model) is not self._registry.resolve(config.provider):
            return False
        built_from = getattr(model, "config", None)
        return isinstance(built_from, type(config)) and built_from.model_dump(
            exclude=set(OPERATIONAL)
        ) == config.model_dump(exclude=set(OPERATIONAL))

    def model_id(self, name: str) -> str:
        """A short, credential-free name of the model behind endpoint `name`."""
        return short_model_id(self._config(name))

    # -- calling ---------------------------------------------------------------------------

    def _attempt(self, name: str, request: GenerationRequest) -> Completion:
        breaker = self._breakers[name]
        breaker.before_call()
        try:
            completion = self.model(name).complete(request)
        except ProviderError as exc:
            _record(breaker, exc)
            raise
        except Exception:
            breaker.record_failure()
            raise
        except BaseException:
            breaker.release()
            raise
        breaker.record_success()
        return completion

    async def _aattempt(self, name: str, request: GenerationRequest) -> Completion:
        breaker = self._breakers[name]
        breaker.before_call()
        timeout = self.configs[name].timeout_s
        try:
            completion = await asyncio.wait_for(self.model(name).acomplete(request), timeout)
        except TimeoutError as exc:
            breaker.record_failure()
            raise ProviderTimeout(f"endpoint {name} did not answer within {timeout:g}s") from exc
        except ProviderError as exc:
            _record(breaker, exc)
            raise
        except Exception:
            breaker.record_failure()
            raise
        except BaseException:  # cancelled from outside: no verdict on the endpoint's health
            breaker.release()
            raise
        breaker.record_success()
        return completion

    async def _astream_attempt(self, name: str, request: GenerationRequest, sink: PieceSink) -> Completion:
        breaker = self._breakers[name]
        breaker.before_call()
        timeout = self.configs[name].timeout_s
        sink.restart(name)
        try:
            async with asyncio.timeout(timeout):
                completion = await drain(self.model(name), request, sink)
        except TimeoutError as exc:
            breaker.record_failure()
            error = ProviderTimeout(f"endpoint {name} did not finish within {timeout:g}s")
            error.__cause__ = exc
            raise _after_commit(sink, error) from exc
        except ProviderError as exc:
            _record(breaker, exc)
            if sink.committed:
                raise MidStream(exc) from exc
            raise
        except SinkFailed as failed:
            breaker.release()
            raise failed.error from failed.error.__cause__
        except Exception:
            breaker.record_failure()
            raise
        except BaseException:  # cancelled from outside (the client left): no verdict on health
            breaker.release()
            raise
        breaker.record_success()
        return completion

    def _call(self, primary: str, name: str, completion: Completion, attempts: int, started: float) -> ModelCall:
        return ModelCall(
            endpoint=name,
            model=completion.model,
            tokens_in=completion.tokens_in,
            tokens_out=completion.tokens_out,
            cost=cost_of(self.configs[name].cost, completion.tokens_in, completion.tokens_out),
            latency_s=time.perf_counter() - started,
            attempts=attempts,
            fallback_from=None if name == primary else primary,
        )

    def _order(self, name: str, chain: Sequence[str] | None) -> list[str]:
        if chain is None:
            return self.chain(name)
        if not chain:
            raise ConfigError(f"no endpoint to try for {name!r}: the chain is empty")
        for ep in chain:
            self._config(ep)
        return list(chain)

    def complete(
        self, name: str, request: GenerationRequest, *, chain: Sequence[str] | None = None
    ) -> tuple[Completion, list[ModelCall]]:
        """Answer `request` with endpoint `name` or, failing that, its fallbacks.

        `chain` replaces the endpoints tried (default `self.chain(name)`, `name` first). An
        answer from any endpoint but `name` is degraded: its `ModelCall.fallback_from` is `name`.
        Models bound their own sync calls (`timeout_s`)."""
        errors: list[tuple[str, ProviderError]] = []
        for ep in self._order(name, chain):
            started = time.perf_counter()
            try:
                completion, attempts = retry(
                    functools.partial(self._attempt, ep, request), self.configs[ep].retry, sleep=self._sleep
                )
            except ProviderError as exc:
                log.warning("endpoint %s failed: %s", ep, one_line(exc))
                errors.append((ep, exc))
                continue
            return completion, [self._call(name, ep, completion, attempts, started)]
        raise _all_failed(name, errors) from errors[-1][1]

    async def acomplete(
        self, name: str, request: GenerationRequest, *, chain: Sequence[str] | None = None
    ) -> tuple[Completion, list[ModelCall]]:
        """The async twin of `complete`; each attempt is bounded by the endpoint's `timeout_s`,
        and a timed-out attempt is cancelled (a local generation stops)."""
        return await self._afirst(name, chain, lambda ep: self._aattempt(ep, request))

    async def astream(
        self, name: str, request: GenerationRequest, sink: PieceSink, *, chain: Sequence[str] | None = None
    ) -> tuple[Completion, list[ModelCall]]:
        """`acomplete`, sending the answer's pieces to `sink` as the model makes them.

        Retries, breakers, timeouts (`timeout_s` bounds the whole stream) and fallbacks work as
        in `acomplete` while `sink.committed` is false: each attempt starts with
        `sink.restart(endpoint)`, which drops what the failed one wrote. Once text is committed
        to the client, a failure is raised as it is, with no retry and no fallback: the client
        already holds part of one endpoint's answer."""
        return await self._afirst(name, chain, lambda ep: self._astream_attempt(ep, request, sink))

    async def _afirst(
        self, name: str, chain: Sequence[str] | None, attempt: Callable[[str], Awaitable[Completion]]
    ) -> tuple[Completion, list[ModelCall]]:
        """The first answer of `attempt(endpoint)` along the chain, each endpoint with its retry
        policy: the loop of `acomplete` and `astream`. A `MidStream` failure ends the walk."""
        errors: list[tuple[str, ProviderError]] = []
        for ep in self._order(name, chain):
            started = time.perf_counter()
            try:
                completion, attempts = await aretry(
                    functools.partial(attempt, ep), self.configs[ep].retry, sleep=self._asleep
                )
            except MidStream as mid:
                log.warning("endpoint %s failed mid-stream: %s", ep, one_line(mid.error))
                raise mid.error from mid
            except ProviderError as exc:
                log.warning("endpoint %s failed: %s", ep, one_line(exc))
                errors.append((ep, exc))
                continue
            return completion, [self._call(name, ep, completion, attempts, started)]
        raise _all_failed(name, errors) from errors[-1][1]

    # -- closing ---------------------------------------------------------------------------

    def _built(self) -> list[ChatModel]:
        with self._lock:
            return [m for name, m in self._models.items() if name not in self._overridden]

    def close(self) -> None:
        """Close every model this pool built (llama weights and worker threads, sync HTTP
        clients); injected overrides are the caller's. Idempotent; a later call builds again."""
        models = self._built()
        with self._lock:
            for name in list(self._models):
                if name not in self._overridden:
                    del self._models[name]
        for model in models:
            close = getattr(model, "close", None)
            if callable(close):
                close()

    async def aclose(self) -> None:
        """Close the async HTTP clients of the models this pool built (on the loop that used
        them), then everything `close()` closes."""
        for model in self._built():
            aclose = getattr(model, "aclose", None)
            if callable(aclose):
                await aclose()
        self.close()


def _record(breaker: CircuitBreaker, exc: ProviderError) -> None:
    # A refused request (4xx) means the endpoint is up and answering: not a health failure.
    if is_retryable(exc):
        breaker.record_failure()
    else:
        breaker.record_success()


def _after_commit(sink: PieceSink, exc: ProviderError) -> ProviderError | MidStream:
    """`exc` as it is while nothing reached the client; wrapped so no retry or fallback sees it
    once something did."""
    return MidStream(exc) if sink.committed else exc


def _all_failed(name: str, errors: list[tuple[str, ProviderError]]) -> ProviderUnavailable:
    tried = ", ".join(ep for ep, _ in errors)
    last_ep, last = errors[-1]
    return ProviderUnavailable(
        f"all endpoints failed for {name!r} (tried {tried}); last error from {last_ep}: {one_line(last)}"
    )
