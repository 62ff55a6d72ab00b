"""The native endpoints (`/v1/ask`, `/v1/retrieve`, `/v1/feedback`, `/v1/models`) and the
operational ones (`/healthz`, `/readyz`, `/version`, `/metrics`)."""

from __future__ import annotations

import asyncio
import functools
import time
from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from workbench.serve.api import (
    AskRequest,
    AskResponse,
    FeedbackRequest,
    FeedbackResponse,
    Health,
    ModelCard,
    ModelList,
    Readiness,
    RetrieveRequest,
    RetrieveResponse,
    VersionInfo,
    source,
    timings,
    verdict,
    view_fields,
)
from workbench.serve.context import ServeContext
from workbench.serve.errors import COMMON_ERRORS, PIPELINE_ERRORS, ApiError, ErrorResponse
from workbench.serve.limits import Limiter
from workbench.serve.principal import principal_of

CHAT_ID_PREFIX = "chatcmpl-"


@functools.cache  # package metadata is read from disk: once per process, not per request
def workbench_version() -> str:
    try:
        return version("workbench")
    except PackageNotFoundError:
        return "unknown"


def native_router(ctx: ServeContext, limiter: Limiter) -> APIRouter:
    router = APIRouter(tags=["workbench"])
    service = ctx.service
    created = int(time.time())

    @router.post("/v1/ask", response_model=AskResponse, responses=PIPELINE_ERRORS, summary="Answer a question")
    async def ask(body: AskRequest, request: Request, response: Response) -> AskResponse:
        """The pipeline's answer with its sources, route, guard verdicts, timings, tokens and cost."""
        principal = principal_of(request.state)
        async with limiter.hold(principal, limiter.estimate(body.question)) as held:
            entry = ctx.new_request(request, "/v1/ask", body.question)
            state = await ctx.run(entry, service.pipeline)
            await limiter.settle_state(held, state)
        response.headers.update(held.headers())
        return AskResponse(id=state.request_id, answer=state.answer or "", **view_fields(state, service.digest))

    @router.post(
        "/v1/retrieve", response_model=RetrieveResponse, responses=PIPELINE_ERRORS, summary="Retrieve chunks only"
    )
    async def retrieve(body: RetrieveRequest, request: Request, response: Response) -> RetrieveResponse:
        """The input guards, the router and the chosen route's retriever and re-ranker: the
        chunks the pipeline would answer from, without generating an answer."""
        principal = principal_of(request.state)
        async with limiter.hold(principal, limiter.estimate(body.question, max_tokens=0)) as held:
            entry = ctx.new_request(request, "/v1/retrieve", body.question)
            state = await ctx.run(entry, service.retrieval, answer=False)
            await limiter.settle_state(held, state)
        response.headers.update(held.headers())
        return RetrieveResponse(
            id=state.request_id,
            query=state.query,
            route=state.route,
            route_score=state.route_score,
            chunks=[source(c) for c in state.chunks],
            verdicts=[verdict(v) for v in state.verdicts],
            timings=timings(state),
        )

    @router.post(
        "/v1/feedback",
        response_model=FeedbackResponse,
        responses=COMMON_ERRORS | {404: {"model": ErrorResponse, "description": "unknown response id"}},
        summary="Thumbs up/down and a comment on a response",
    )
    async def feedback(body: FeedbackRequest) -> FeedbackResponse:
        """Stored in the request log's `feedback` table, the comment masked for PII; on the
        request's MLflow trace too when tracing is on."""
        response_id = body.response_id.removeprefix(CHAT_ID_PREFIX)
        log = service.request_log
        future = log.submit(log.feedback, response_id, body.thumbs, body.comment, body.user)
        record = await asyncio.wrap_future(future)
        if record is None:
            raise ApiError(404, f"no response with id {body.response_id!r}", "not_found", param="response_id")
        return FeedbackResponse(
            feedback_id=record.feedback_id, response_id=body.response_id, thumbs=body.thumbs, comment=record.comment
        )

    @router.get("/v1/models", response_model=ModelList, summary="The served model")
    async def models() -> ModelList:
        return ModelList(data=[ModelCard(id=service.model_id, created=created)])

    return router


def ops_router(ctx: ServeContext) -> APIRouter:
    router = APIRouter(tags=["operations"])
    service = ctx.service

    @router.get("/healthz", response_model=Health, summary="The process is up")
    async def healthz() -> Health:
        return Health()

    @router.get(
        "/readyz",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "the golden set has not passed (yet)"}},
        summary="Ready once every golden question got its expected answer",
    )
    async def readyz() -> Response:
        body = Readiness(status=ctx.readiness.status, mismatches=ctx.readiness.mismatches)
        return JSONResponse(body.model_dump(mode="json"), status_code=200 if body.status == "ready" else 503)

    @router.get("/version", response_model=VersionInfo, summary="What is served")
    async def version_info() -> VersionInfo:
        return VersionInfo(
            bundle_digest=service.digest, config_name=service.config.name, workbench_version=workbench_version()
        )

    @router.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text"}},
        summary="Prometheus metrics",
    )
    async def metrics() -> Response:
        ctx.metrics.observe_breakers(service.breakers())
        payload, content_type = await asyncio.to_thread(ctx.metrics.render)
        return Response(payload, media_type=content_type)

    return router
