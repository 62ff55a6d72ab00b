"""`Judge`: one LLM endpoint used as an evaluator, with its identity, weakness label, repeats and
a DuckDB cache of verdicts.

A judge never turns a failure into a number. Each judged item yields a `MetricResult` that is
either a value, or `failed=True` with a one-line `error` ("parse failure: ..." or
"provider error: ...") and the retries spent; the caller counts failures and carries on.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from workbench.core.errors import ConfigError, ProviderError, ProviderUnavailable
from workbench.core.protocols import ChatModel, Completion, Embedder, GenerationRequest
from workbench.core.registry import Registry
from workbench.core.schema import ModelEndpoint
from workbench.core.state import ModelCall
from workbench.evaluation.base import MetricResult
from workbench.evaluation.judged._cache import JudgmentCache, judgment_key
from workbench.evaluation.judged._llm import Call, JudgeParseError, short, structured_llm

if TYPE_CHECKING:
    from workbench.models.endpoints import EndpointPool

log = logging.getLogger(__name__)

DEFAULT_CACHE = ".workbench/judge_cache.duckdb"
# Bump when the adapter changes what the judge is asked (retry message, schema bounds).
ADAPTER_VERSION = 1
# A stop sequence meant for short answers would cut a JSON verdict, so the judge clears it.
DEFAULT_PARAMS: dict[str, Any] = {"temperature": 0.0, "max_tokens": 512, "stop": None}
# Local GGUF judges on this workbench are small models: their verdicts are labelled weak.
_WEAK_BY_DEFAULT = {"llama_cpp": True, "openai_compat": False}


def judge_providers() -> Registry:
    """Providers a judge can be built on; the extractive baseline cannot judge."""
    return Registry(
        "judge provider",
        {
            "llama_cpp": "workbench.models.llama_cpp:LlamaCppModel",
            "openai_compat": "workbench.models.openai_compat:OpenAICompatModel",
        },
    )


class JudgeEndpoints(Protocol):
    """What a judge needs from an endpoint pool (`workbench.models.EndpointPool`): calls with
    retries, breakers and fallbacks, and the identity of the model behind an endpoint."""

    configs: dict[str, ModelEndpoint]

    def chain(self, name: str) -> list[str]: ...

    def identity(self, name: str) -> dict[str, Any]: ...

    def model_id(self, name: str) -> str: ...

    def model(self, name: str) -> ChatModel: ...

    async def acomplete(
        self, name: str, request: GenerationRequest, *, chain: Sequence[str] | None = None
    ) -> tuple[Completion, list[ModelCall]]: ...

    def close(self) -> None: ...

    async def aclose(self) -> None: ...


def default_prompt_version() -> str:
    try:
        ragas = metadata.version("ragas")
    except metadata.PackageNotFoundError:
        ragas = "?"
    return f"ragas-{ragas}+wb{ADAPTER_VERSION}"


@dataclass
class JudgeStats:
    """What scoring cost: model calls, cache hits, failures by cause, and verdicts that a
    fallback endpoint gave (reported, never cached as the judge's own)."""

    cache_hits: int = 0
    cache_misses: int = 0
    model_calls: int = 0
    parse_retries: int = 0
    parse_failures: int = 0
    provider_failures: int = 0
    fallback_verdicts: int = 0


RunOne = Callable[[Any], Awaitable[float]]


class Judge:
    """An evaluator LLM: endpoint `name` of an endpoint pool. Build it with
    `Judge.from_endpoint`; the constructor only stores.

    Every call goes through the pool, so the endpoint's retries (honouring Retry-After),
    circuit breaker, timeout and fallbacks apply. The judge is named and keyed by `name`, its
    primary endpoint; a verdict that needed a fallback is counted in `stats.fallback_verdicts`
    and not cached. `repeats` judges each item that many times (with a different seed each
    time) and reports the verdicts in `MetricResult.samples`; with temperature 0 they usually
    agree, so raise the temperature in `params` to measure a judge's variance.
    `cache_path=None` disables the cache. With `owns_pool`, `close()` closes the pool too.
    """

    def __init__(
        self,
        name: str,
        pool: JudgeEndpoints,
        *,
        weak: bool,
        prompt_version: str | None = None,
        repeats: int = 1,
        params: Mapping[str, Any] | None = None,
        max_parse_retries: int = 2,
        max_items: int | None = 12,
        cache_path: str | Path | None = DEFAULT_CACHE,
        embedder: Embedder | None = None,
        owns_pool: bool = False,
    ) -> None:
        if repeats < 1:
            raise ConfigError(f"judge repeats must be at least 1, got {repeats}")
        if max_parse_retries < 0:
            raise ConfigError(f"max_parse_retries must be >= 0, got {max_parse_retries}")
        endpoint = _judge_endpoint(name, pool.configs.get(name))
        self.name = name
        self.pool = pool
        self.model_id = pool.model_id(name)
        self.weak = weak
        self.prompt_version = prompt_version or default_prompt_version()
        self.repeats = repeats
        self.params: dict[str, Any] = {**DEFAULT_PARAMS, **(params or {})}
        self.max_parse_retries = max_parse_retries
        self.max_items = max_items
        self.timeout_s = endpoint.timeout_s
        self.embedder = embedder
        self.cache = JudgmentCache(cache_path) if cache_path is not None else None
        self.stats = JudgeStats()
        self._identity = {**pool.identity(name), "params": self.params, "max_items": max_items}
        # The extractive baseline cannot judge: a fallback to it would only fail to parse.
        self._chain = [ep for ep in pool.chain(name) if pool.configs[ep].provider in _WEAK_BY_DEFAULT]
        self._owns_pool = owns_pool

    @classmethod
    def from_endpoint(
        cls,
        name: str,
        endpoint: ModelEndpoint,
        model: ChatModel | None = None,
        *,
        weak: bool | None = None,
        registry: Registry | None = None,
        pool: JudgeEndpoints | None = None,
        timeout_s: float | None = None,
        **options: Any,
    ) -> Judge:
        """A judge on model endpoint `name` with config `endpoint`.

        Pass the session's `pool` (whose `configs[name]` is `endpoint`) to share its models,
        breakers and fallbacks. Without one, the judge builds a pool of its own holding just
        this endpoint (no fallbacks; `registry` picks the provider classes, `model` replaces
        the provider as tests do with fakes, `timeout_s` replaces the endpoint's) and closes it
        in `close()`. `weak` defaults to True for llama_cpp endpoints; `options` go to the
        constructor."""
        _judge_endpoint(name, endpoint)
        if pool is not None:
            if model is not None or timeout_s is not None or registry is not None:
                raise ConfigError("a judge on a shared pool takes its model, timeout and providers from the pool")
            if pool.configs.get(name) != endpoint:
                raise ConfigError(f"the pool's model endpoint {name!r} is not the endpoint given to the judge")
            owns = False
        else:
            pool = _own_pool(name, endpoint, model, registry, timeout_s)
            owns = True
        return cls(
            name,
            pool,
            weak=_WEAK_BY_DEFAULT[endpoint.provider] if weak is None else weak,
            owns_pool=owns,
            **options,
        )

    @property
    def model(self) -> ChatModel:
        """The model behind the judge's primary endpoint."""
        return self.pool.model(self.name)

    @property
    def label(self) -> str:
        """The name results carry; a weak judge says so in every verdict."""
        return f"{self.name} (weak judge)" if self.weak else self.name

    @property
    def fingerprint(self) -> str:
        return judgment_key(self._identity, self.prompt_version)

    async def check(self) -> None:
        """Preflight: one tiny structured call. Raises `ProviderUnavailable` with one line if the
        judge cannot be reached; a reply that does not parse is only logged."""

        class Ping(BaseModel):
            ok: bool

        call, fallbacks = self._caller()
        llm = structured_llm(call, params={**self.params, "max_tokens": 16}, max_parse_retries=0, max_items=None)
        try:
            await llm.agenerate('Reply with the JSON object {"ok": true}.', Ping)
        except ProviderError as exc:
            raise ProviderUnavailable(f"judge {self.name} ({self.model_id}) is unreachable: {short(str(exc))}") from exc
        except JudgeParseError as exc:
            log.warning("judge %s answered the preflight with invalid JSON: %s", self.name, exc)
        finally:
            self.stats.model_calls += llm.calls
        if fallbacks:
            log.warning("judge %s is unreachable; its fallback %s answered the preflight", self.name, fallbacks[0])

    def _caller(self) -> tuple[Call, list[str]]:
        """A call through the pool, and the list it fills with the fallback endpoints that answered."""
        fallbacks: list[str] = []

        async def call(request: GenerationRequest) -> Completion:
            completion, calls = await self.pool.acomplete(self.name, request, chain=self._chain)
            fallbacks.extend(c.endpoint for c in calls if c.fallback_from is not None)
            return completion

        return call, fallbacks

    def _result(self, **kw: Any) -> MetricResult:
        return MetricResult(judge=self.label, prompt_version=self.prompt_version, **kw)

    def not_applicable(self) -> MetricResult:
        return self._result(value=None)

    async def ajudge(
        self, metric: str, inputs: Mapping[str, Any], run: RunOne, metric_config: Mapping[str, Any] | None = None
    ) -> MetricResult:
        """Judge one item `repeats` times. `run(llm)` scores it with a fresh ragas LLM and
        returns the value; cached verdicts are reused, failures are reported, never cached."""
        samples: list[float] = []
        errors: list[str] = []
        retries = 0
        for index in range(self.repeats):
            key = judgment_key(self._identity, self.prompt_version, metric, dict(metric_config or {}), inputs, index)
            cached = self.cache.get(key) if self.cache is not None else None
            if cached is not None:
                self.stats.cache_hits += 1
                samples.append(cached)
                continue
            self.stats.cache_misses += 1
            params = self.params if self.repeats == 1 else {**self.params, "seed": index}
            call, fallbacks = self._caller()
            llm = structured_llm(
                call, params=params, max_parse_retries=self.max_parse_retries, max_items=self.max_items
            )
            try:
                value = float(await run(llm))
            except JudgeParseError as exc:
                self.stats.parse_failures += 1
                errors.append(str(exc))
                continue
            except ProviderError as exc:
                self.stats.provider_failures += 1
                errors.append(f"provider error: {short(str(exc))}")
                continue
            finally:
                retries += llm.retries
                self.stats.parse_retries += llm.retries
                self.stats.model_calls += llm.calls
            if not math.isfinite(value):
                # ragas returns NaN when, e.g., no statement could be extracted from the answer.
                self.stats.parse_failures += 1
                errors.append(f"no verdict: ragas {metric} returned {value} (the judge extracted nothing to judge)")
                continue
            samples.append(value)
            if fallbacks:
                # Not this judge's verdict: report it, but never serve it later under its key.
                self.stats.fallback_verdicts += 1
                log.info("judge %s: a %s verdict came from fallback %s; not cached", self.name, metric, fallbacks[0])
                continue
            if self.cache is not None:
                self.cache.put(key, metric=metric, judge=self.label, prompt_version=self.prompt_version, value=value)
        if not samples:
            return self._result(value=None, failed=True, error=errors[0], retries=retries)
        error = f"{len(errors)} of {self.repeats} repeats failed; first: {errors[0]}" if errors else None
        return self._result(
            value=sum(samples) / len(samples),
            error=error,
            retries=retries,
            samples=tuple(samples) if self.repeats > 1 else (),
        )

    def close(self) -> None:
        """Close the cache file, and the judge's own pool (not a shared one). Idempotent."""
        if self.cache is not None:
            self.cache.close()
        if self._owns_pool:
            self.pool.close()

    async def aclose(self) -> None:
        """`close()`, after closing the async HTTP clients of the judge's own pool."""
        if self._owns_pool:
            await self.pool.aclose()
        self.close()


def _judge_endpoint(name: str, endpoint: ModelEndpoint | None) -> ModelEndpoint:
    if endpoint is None:
        raise ConfigError(f"unknown model endpoint {name!r} for the judge")
    if endpoint.provider not in _WEAK_BY_DEFAULT:
        raise ConfigError(
            f"model endpoint {name!r} (provider {endpoint.provider}) cannot judge; "
            f"valid judge providers: {', '.join(sorted(_WEAK_BY_DEFAULT))}"
        )
    return endpoint


def _own_pool(
    name: str, endpoint: ModelEndpoint, model: ChatModel | None, registry: Registry | None, timeout_s: float | None
) -> EndpointPool:
    # Imported here: a standalone judge composes the models layer; `evaluation` does not
    # depend on it otherwise (a session passes its pool in).
    from workbench.models.endpoints import EndpointPool

    update: dict[str, Any] = {"fallbacks": []}
    if timeout_s is not None:
        update["timeout_s"] = timeout_s
    own = endpoint.model_copy(update=update)
    return EndpointPool(
        {name: own}, {name: model} if model is not None else None, registry=registry or judge_providers()
    )
