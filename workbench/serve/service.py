"""`ServedPipeline`: everything the app serves, handed to `create_app` as one injected object.

Tests build it from a `Workbench` session with fakes (`from_workbench`); the server builds it
from a verified bundle (`from_bundle`). The app never reaches past it to a session or bundle.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.schema import PipelineConfig
from workbench.core.stage import Pipeline, RouteSwitch, Stage
from workbench.serve.request_log import RequestLog

if TYPE_CHECKING:
    from workbench.serve.tracing import TraceWriter

log = logging.getLogger(__name__)

# The stages that turn retrieved chunks into an answer; `/v1/retrieve` runs the rest.
ANSWER_STAGES = frozenset({"generator", "output_guard"})

GoldenCheck = Callable[[], Awaitable[list[str]]]
StreamFn = Callable[..., AsyncGenerator[Any, None]]


async def _no_golden_set() -> list[str]:
    return []


def retrieval_pipeline(pipeline: Pipeline, drop: frozenset[str] = ANSWER_STAGES) -> Pipeline:
    """The same stage objects (same config, same cache) without the answering stages: the
    input guard, router and each route's retriever and re-ranker."""

    def keep(stage: Stage) -> Stage | None:
        if stage.kind in drop:
            return None
        if isinstance(stage, Pipeline):
            return Pipeline([s for s in map(keep, stage.stages) if s is not None], name=stage.name, cache=stage.cache)
        if isinstance(stage, RouteSwitch):
            routes = {name: keep(sub) for name, sub in stage.routes.items()}
            return RouteSwitch({k: v for k, v in routes.items() if isinstance(v, Pipeline)}, stage.default)
        return stage

    kept = keep(pipeline)
    assert isinstance(kept, Pipeline)
    return kept


def count_tokens_with(pool: Any, endpoint: str, text: str) -> int:
    """Tokens of `text` by `endpoint`'s model's tokenizer where it has one, else the estimate."""
    from workbench.core.protocols import TokenCounter
    from workbench.core.tokens import estimate_tokens

    model = pool.model(endpoint) if pool is not None else None
    counted = model.count_tokens(text) if isinstance(model, TokenCounter) else None
    return counted if counted is not None else estimate_tokens(text)


@dataclass
class ServedPipeline:
    """The pipeline and its companions, as the app needs them.

    - `pipeline`, `config`: what answers, and the config it was built from;
    - `digest`: the bundle digest (`/version`, every response's extension field);
    - `golden_check`: awaited once at start-up; `[]` means every golden question matched and
      `/readyz` turns 200;
    - `request_log`: where every request is written;
    - `pool`: the `EndpointPool`, for breaker states (metrics, Retry-After);
    - `stream`: `stream_answer(pipeline, query, *, request_id)`; default: the serve layer's;
    - `session`: the `Workbench` it came from, for jobs that evaluate a dataset (None: none).
    """

    pipeline: Pipeline
    config: PipelineConfig
    request_log: RequestLog
    digest: str = "unbundled"
    golden_check: GoldenCheck = _no_golden_set
    pool: Any = None
    stream: StreamFn | None = None
    tracer: TraceWriter | None = None
    session: Any = None
    on_close: list[Callable[[], Any]] = field(default_factory=list)
    _retrieval: Pipeline | None = None

    @property
    def model_id(self) -> str:
        """The model id clients name in `/v1/chat/completions`: the config's name."""
        return self.config.name

    @property
    def retrieval(self) -> Pipeline:
        if self._retrieval is None:
            self._retrieval = retrieval_pipeline(self.pipeline)
        return self._retrieval

    def count_tokens(self, text: str) -> int:
        """`text`'s tokens by the default generation model's own tokenizer where it has one
        (llama.cpp, once loaded), else the estimate."""
        return count_tokens_with(self.pool, self.config.generation.model, text)

    def breakers(self) -> list[Any]:
        if self.pool is None:
            return []
        return [self.pool.breaker(name) for name in self.pool.configs]

    def stream_fn(self) -> StreamFn:
        if self.stream is None:
            from workbench.serve.streaming import stream_answer

            self.stream = stream_answer
        return self.stream

    def close(self) -> None:
        """Write what is queued, stop the tracer, then close what the builder registered."""
        self.request_log.close()
        if self.tracer is not None:
            self.tracer.close()
        for fn in reversed(self.on_close):
            try:
                fn()
            except Exception:  # closing one part must not leave the others open
                log.exception("closing %r failed", fn)

    @classmethod
    def from_workbench(
        cls,
        wb: Any,
        *,
        log_dir: str | Path,
        digest: str = "unbundled",
        golden_check: GoldenCheck | None = None,
        tracer: TraceWriter | None = None,
        close_session: bool = False,
    ) -> ServedPipeline:
        """Serve a `Workbench` session's pipeline (the same object `wb.ask` runs)."""
        from workbench.guardrails.pii import pii_masker

        config: PipelineConfig = wb.config
        request_log = RequestLog(
            log_dir,
            # The config's PII masker (every `pii` check, input and output), as `Workbench.feedback` uses.
            mask=pii_masker([*config.guardrails.input, *config.guardrails.output]),
            run_id=f"served:{config.name}:{digest[:16]}",
            tracker=tracer.tracker if tracer is not None else None,
        )
        served = cls(
            pipeline=wb.pipeline,
            config=config,
            request_log=request_log,
            digest=digest,
            golden_check=golden_check or _no_golden_set,
            pool=wb.pool,
            tracer=tracer,
            session=wb,
        )
        if close_session:
            served.on_close.append(wb.close)
        return served

    @classmethod
    def from_bundle(
        cls,
        bundle: Any,
        *,
        embedder: Any = None,
        models: dict[str, Any] | None = None,
        tracer: TraceWriter | None = None,
    ) -> ServedPipeline:
        """Serve an opened, verified `workbench.bundle.Bundle`: its session's pipeline, its
        golden set as the readiness check, its `var/requests/` folder as the request log."""
        wb = bundle.session(embedder=embedder, models=models, tracker=tracer.tracker if tracer else None)
        pipeline = wb.pipeline

        async def golden() -> list[str]:
            result: list[str] = await bundle.arun_golden(pipeline)
            return result

        return cls.from_workbench(
            wb,
            log_dir=Path(bundle.request_log_dir) / "requests",
            digest=bundle.digest,
            golden_check=golden,
            tracer=tracer,
            close_session=True,
        )
