"""`create_app`: the FastAPI app of one served pipeline, built by a factory (no module state).

Its parts are injected: the `ServedPipeline` (pipeline, config, request log, golden check,
endpoint pool, tracer), an optional `authenticate` hook, and the body limit. Tests build the
app in process; `python -m workbench serve` hands it to uvicorn.

At start-up the golden check runs in the background: `/readyz` is 503 until it returns no
mismatch. At shutdown the request log and traces are written out and the models closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Request

from workbench.serve.chat import chat_router
from workbench.serve.context import ServeContext
from workbench.serve.errors import install, retry_after_seconds
from workbench.serve.limits import Limiter
from workbench.serve.metrics import ServeMetrics, mark_process_dead
from workbench.serve.middleware import BodyLimit, RequestMetrics
from workbench.serve.routes import native_router, ops_router, workbench_version
from workbench.serve.service import ServedPipeline

if TYPE_CHECKING:
    from workbench.serve.jobs import Jobs

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 1_000_000

Authenticate = Callable[[Request], Awaitable[None]]

DESCRIPTION = """A RAG pipeline exported by the workbench, served as evaluated.

* `POST /v1/chat/completions` is OpenAI-compatible (streaming and not). The response and the
  last stream chunk carry a `workbench` extension field: sources, route, guard verdicts,
  timings, tokens, cost and the bundle digest.
* `POST /v1/ask` and `POST /v1/retrieve` are the native endpoints; `POST /v1/feedback` takes
  thumbs up/down on a response id.
* Every error has the shape `{"error": {"message", "type", "code", "param", "request_id"}}`.
"""


async def _readiness_check(ctx: ServeContext) -> None:
    try:
        mismatches = await ctx.service.golden_check()
    except Exception as exc:  # a failing check keeps the server unready, it does not stop it
        log.exception("the golden-set check failed")
        ctx.readiness.status, ctx.readiness.mismatches = "failed", [f"{type(exc).__name__}: {exc}"]
        return
    ctx.readiness.mismatches = list(mismatches)
    ctx.readiness.status = "ready" if not mismatches else "failed"
    if mismatches:
        log.error("golden set: %d mismatch(es); /readyz stays 503: %s", len(mismatches), "; ".join(mismatches[:3]))


def create_app(
    service: ServedPipeline,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    authenticate: Authenticate | None = None,
    metrics: ServeMetrics | None = None,
    jobs: Jobs | None = None,
    limiter: Limiter | None = None,
) -> FastAPI:
    """The app serving `service`. `authenticate(request)` raises `AuthError` to refuse a
    request to the `/v1/*` endpoints (None: open). `limiter` enforces the rate limits and
    quotas (default: in-process, the principals' own limits only). `jobs` adds `/v1/jobs`
    (started and stopped with the app; None: no job routes)."""
    ctx = ServeContext(service=service, metrics=metrics or ServeMetrics())
    limiter = limiter if limiter is not None else Limiter()
    limiter.use_tokenizer(service.count_tokens)
    limiter.watch(lambda degraded: ctx.metrics.limiter_degraded.set(1 if degraded else 0))
    if service.tracer is not None:
        service.tracer.on_trace = service.request_log.note_trace

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        check = asyncio.create_task(_readiness_check(ctx))
        if jobs is not None:
            await jobs.start()
        try:
            yield
        finally:
            if jobs is not None:
                await jobs.stop()
            check.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await check
            if service.pool is not None:
                # Async clients belong to this loop: close them here.
                with contextlib.suppress(Exception):
                    await service.pool.aclose()
            with contextlib.suppress(Exception):
                await limiter.aclose()
            await asyncio.to_thread(service.close)
            mark_process_dead(os.getpid())

    async def auth(request: Request) -> None:
        if authenticate is not None:
            await authenticate(request)

    app = FastAPI(
        title=f"workbench: {service.config.name}",
        version=workbench_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    install(app, lambda: retry_after_seconds(service.breakers()), refused=ctx.refused)
    dependencies: list[Any] = [Depends(auth)]
    app.include_router(chat_router(ctx, limiter), dependencies=dependencies)
    app.include_router(native_router(ctx, limiter), dependencies=dependencies)
    if jobs is not None:
        from workbench.serve.jobs import jobs_router

        app.include_router(jobs_router(jobs), dependencies=dependencies)
    app.include_router(ops_router(ctx))
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=ctx.metrics)
    return app


def bearer_token(expected: str) -> Authenticate:
    """An `authenticate` hook accepting `Authorization: Bearer <expected>` (the openai client's
    `api_key`)."""
    import hmac

    from workbench.core.errors import AuthError

    async def check(request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
            raise AuthError("missing or wrong API key (send Authorization: Bearer <key>)")

    return check
