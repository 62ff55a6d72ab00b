"""`Judge`: one LLM endpoint used as an evaluator, with its identity, weakness label, repeats and
a DuckDB cache of verdicts.

A judge never turns a failure into a number. Each judged item yields a `MetricResult` that is
either a value, or `failed=True` with a one-line `error` ("parse failure: ..." or
"provider error: ...") and the retries spent; the caller counts failures and carries on.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from workbench.core.errors import ConfigError, ProviderError, ProviderUnavailable
from workbench.core.protocols import ChatModel, Embedder
from workbench.core.registry import Registry
from workbench.core.schema import LlamaCppEndpoint, ModelEndpoint, OpenAICompatEndpoint
from workbench.evaluation.base import MetricResult
from workbench.evaluation.judged._cache import JudgmentCache, judgment_key
from workbench.evaluation.judged._llm import JudgeParseError, short, structured_llm, with_timeout

log = logging.getLogger(__name__)

DEFAULT_CACHE = ".workbench/judge_cache.duckdb"
# Bump when the adapter changes what the judge is asked (retry message, schema bounds).
ADAPTER_VERSION = 1
# A stop sequence meant for short answers would cut a JSON verdict, so the judge clears it.
DEFAULT_PARAMS: dict[str, Any] = {"temperature": 0.0, "max_tokens": 512, "stop": None}
# Fields of an endpoint config that change how it is reached, not what it answers.
_OPERATIONAL = {"cost", "fallbacks", "timeout_s", "retry", "breaker", "api_key_env", "n_threads"}


def judge_providers() -> Registry:
    """Providers a judge can be built on; the extractive baseline cannot judge."""
    return Registry(
        "judge provider",
        {
            "llama_cpp": "workbench.models.llama_cpp:LlamaCppModel",
            "openai_compat": "workbench.models.openai_compat:OpenAICompatModel",
        },
    )


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


def _llama_cpp_id(ep: LlamaCppEndpoint) -> str:
    src = ep.source
    if src.path is not None:
        return Path(src.path).name
    assert src.package is not None
    return f"{src.package}=={_package_version(src.package)}/{src.pattern}"


def _openai_compat_id(ep: OpenAICompatEndpoint) -> str:
    return f"{ep.model}@{ep.base_url.rstrip('/')}"


_MODEL_IDS: dict[str, Callable[[Any], str]] = {"llama_cpp": _llama_cpp_id, "openai_compat": _openai_compat_id}
# Local GGUF judges on this workbench are small models: their verdicts are labelled weak.
_WEAK_BY_DEFAULT = {"llama_cpp": True, "openai_compat": False}


def default_prompt_version() -> str:
    return f"ragas-{_package_version('ragas')}+wb{ADAPTER_VERSION}"


@dataclass
class JudgeStats:
    """What scoring cost: model calls, cache hits, and failures by cause."""

    cache_hits: int = 0
    cache_misses: int = 0
    model_calls: int = 0
    parse_retries: int = 0
    parse_failures: int = 0
    provider_failures: int = 0


RunOne = Callable[[Any], Awaitable[float]]


class Judge:
    """An evaluator LLM. Build it with `Judge.from_endpoint`; the constructor only stores.

    `repeats` judges each item that many times (with a different seed each time) and reports the
    verdicts in `MetricResult.samples`; with temperature 0 they usually agree, so raise the
    temperature in `params` to measure a judge's variance. `cache_path=None` disables the cache.
    """

    def __init__(
        self,
        name: str,
        model: ChatModel,
        *,
        model_id: str,
        identity: Mapping[str, Any],
        weak: bool,
        prompt_version: str | None = None,
        repeats: int = 1,
        params: Mapping[str, Any] | None = None,
        max_parse_retries: int = 2,
        max_items: int | None = 12,
        timeout_s: float = 120.0,
        cache_path: str | Path | None = DEFAULT_CACHE,
        embedder: Embedder | None = None,
    ) -> None:
        if repeats < 1:
            raise ConfigError(f"judge repeats must be at least 1, got {repeats}")
        if max_parse_retries < 0:
            raise ConfigError(f"max_parse_retries must be >= 0, got {max_parse_retries}")
        self.name = name
        self.model = model
        self.model_id = model_id
        self.weak = weak
        self.prompt_version = prompt_version or default_prompt_version()
        self.repeats = repeats
        self.params: dict[str, Any] = {**DEFAULT_PARAMS, **(params or {})}
        self.max_parse_retries = max_parse_retries
        self.max_items = max_items
        self.timeout_s = timeout_s
        self.embedder = embedder
        self.cache = JudgmentCache(cache_path) if cache_path is not None else None
        self.stats = JudgeStats()
        self._identity = {**identity, "model_id": model_id, "params": self.params, "max_items": max_items}
        self._call = with_timeout(model, timeout_s)
        self._owns_model = False

    @classmethod
    def from_endpoint(
        cls,
        name: str,
        endpoint: ModelEndpoint,
        model: ChatModel | None = None,
        *,
        weak: bool | None = None,
        registry: Registry | None = None,
        **options: Any,
    ) -> Judge:
        """A judge on a model endpoint config. `model` replaces the provider (tests pass fakes);
        `weak` defaults to True for llama_cpp endpoints; `options` go to the constructor."""
        if endpoint.provider not in _MODEL_IDS:
            raise ConfigError(
                f"model endpoint {name!r} (provider {endpoint.provider}) cannot judge; "
                f"valid judge providers: {', '.join(sorted(_MODEL_IDS))}"
            )
        identity: dict[str, Any] = {"config": endpoint.model_dump(mode="json", exclude=_OPERATIONAL)}
        if model is None:
            model = (registry or judge_providers()).resolve(endpoint.provider)(endpoint)
        else:
            identity["override"] = type(model).__qualname__
        options.setdefault("timeout_s", endpoint.timeout_s)
        judge = cls(
            name,
            model,
            model_id=_MODEL_IDS[endpoint.provider](endpoint),
            identity=identity,
            weak=_WEAK_BY_DEFAULT[endpoint.provider] if weak is None else weak,
            **options,
        )
        judge._owns_model = "override" not in identity
        return judge

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

        llm = structured_llm(self._call, params={**self.params, "max_tokens": 16}, max_parse_retries=0, max_items=None)
        try:
            await llm.agenerate('Reply with the JSON object {"ok": true}.', Ping)
        except ProviderError as exc:
            raise ProviderUnavailable(f"judge {self.name} ({self.model_id}) is unreachable: {short(str(exc))}") from exc
        except JudgeParseError as exc:
            log.warning("judge %s answered the preflight with invalid JSON: %s", self.name, exc)
        finally:
            self.stats.model_calls += llm.calls

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
            llm = structured_llm(
                self._call, params=params, max_parse_retries=self.max_parse_retries, max_items=self.max_items
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
        """Close the cache file, and the model if this judge created it."""
        if self.cache is not None:
            self.cache.close()
        close = getattr(self.model, "close", None) if self._owns_model else None
        if callable(close):
            close()
