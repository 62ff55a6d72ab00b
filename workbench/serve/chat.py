"""`POST /v1/chat/completions`: OpenAI's chat completions, streamed (SSE) or not.

A stream is honest (see `workbench.serve.streaming`): the first event is awaited before any
header is sent, so an input-guard block or a provider failure before the first committed byte
is a plain HTTP error, not a stream. After that, committed text goes out as chunks; the last
chunk carries finish_reason "stop" and the `workbench` extension, then `data: [DONE]`. A
failure after the first byte is an `event: error` line with an OpenAI-style error body, and the
stream ends without a finish_reason and without [DONE].

Rate limits: the request's tokens are reserved before any model runs (a refusal is a plain
429/402). A stream is charged as it streams: once its text outgrows the reserved answer
allowance, each further piece takes its tokens from the buckets first, and a piece the budget
cannot cover ends the stream with an `event: error` (429 body). The end settles real usage.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from workbench.core.errors import GuardrailBlocked, WorkbenchError
from workbench.core.state import RequestState
from workbench.serve.api import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    ChunkDelta,
    RequestView,
    usage,
)
from workbench.serve.context import ServeContext
from workbench.serve.errors import PIPELINE_ERRORS, ApiError, ErrorResponse, workbench_error_body
from workbench.serve.limits import Limiter, Reservation
from workbench.serve.principal import principal_of
from workbench.serve.request_log import LogEntry

log = logging.getLogger(__name__)

ENDPOINT = "/v1/chat/completions"
_STREAM_DOC = (
    "with stream=true: `data: {chat.completion.chunk}` lines, then `data: [DONE]`; a failure after "
    "the first byte is `event: error` + `data: {error}` and no [DONE]"
)
RESPONSES: dict[int | str, dict[str, Any]] = PIPELINE_ERRORS | {
    200: {"content": {"text/event-stream": {"schema": {"type": "string", "description": _STREAM_DOC}}}},
    404: {"model": ErrorResponse, "description": "unknown model"},
}


def _sse(data: Any) -> bytes:
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _sse_error(exc: WorkbenchError, request_id: str) -> bytes:
    _, body = workbench_error_body(exc, request_id)
    return f"event: error\ndata: {json.dumps(body, separators=(',', ':'))}\n\n".encode()


def chat_router(ctx: ServeContext, limiter: Limiter) -> APIRouter:
    router = APIRouter(tags=["openai"])
    service = ctx.service

    @router.post(
        ENDPOINT,
        response_model=ChatCompletion,
        responses=RESPONSES,
        summary="OpenAI-compatible chat completion",
    )
    async def chat_completions(body: ChatCompletionRequest, request: Request, response: Response) -> Any:
        """The question is the last user message; earlier messages are not used (the pipeline
        answers one question from its retrieval index). Works with the official `openai` client."""
        if body.model != service.model_id:
            raise ApiError(
                404,
                f"the model {body.model!r} does not exist; this server serves {service.model_id!r}",
                "invalid_request_error",
                param="model",
            )
        try:
            question = body.question()
        except ValueError as exc:
            raise ApiError(422, str(exc), "invalid_request_error", param="messages") from None
        principal = principal_of(request.state)
        max_tokens = body.max_completion_tokens or body.max_tokens
        if body.stream:
            held = await limiter.reserve(principal, limiter.estimate(question, max_tokens))
            entry = ctx.new_request(request, ENDPOINT, question, stream=True)
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            charge = _Charge(limiter, held, max_tokens if max_tokens is not None else limiter.config.output_tokens)
            return await _open_stream(ctx, entry, question, include_usage, charge)
        async with limiter.hold(principal, limiter.estimate(question, max_tokens)) as held:
            entry = ctx.new_request(request, ENDPOINT, question)
            state = await ctx.run(entry, service.pipeline)
            await limiter.settle_state(held, state)
        response.headers.update(held.headers())
        return ChatCompletion(
            id=f"chatcmpl-{state.request_id}",
            created=int(time.time()),
            model=service.model_id,
            choices=[Choice(message=AssistantMessage(content=state.answer or ""))],
            usage=usage(state),
            workbench=RequestView.of(state, service.digest),
        )

    return router


class _Charge:
    """A stream's reservation, charged as its text streams past the reserved answer allowance."""

    def __init__(self, limiter: Limiter, held: Reservation, allowance: int) -> None:
        self.limiter, self.held, self.allowance, self.streamed = limiter, held, allowance, 0

    async def text(self, text: str) -> None:
        """Take the tokens of `text` beyond the allowance; raises `QuotaExceeded` if it cannot."""
        self.streamed += self.limiter.count_tokens(text)
        over = self.streamed - self.allowance
        if over > 0:
            await self.limiter.extend(self.held, over)
            self.allowance += over

    async def end(self, state: RequestState | None = None, exc: BaseException | None = None) -> None:
        if state is not None:
            await self.limiter.settle_state(self.held, state)
        elif exc is not None:
            await self.limiter.release(self.held, exc)


async def _open_stream(
    ctx: ServeContext, entry: LogEntry, question: str, include_usage: bool, charge: _Charge
) -> StreamingResponse:
    from workbench.serve.streaming import Failed

    service = ctx.service
    started = time.perf_counter()
    events = service.stream_fn()(service.pipeline, question, request_id=entry.request_id)
    try:
        first = await anext(events)
    except StopAsyncIteration:
        first = Failed(WorkbenchError("the stream ended without an answer"), committed=False)
    except BaseException as exc:
        ctx.failed(entry, started, exc)
        await charge.end(exc=exc)
        raise
    if isinstance(first, Failed) and not first.committed:
        await events.aclose()
        ctx.failed(entry, started, first.error)
        await charge.end(exc=first.error)
        raise first.error
    stream = _Stream(ctx, entry, started, include_usage, charge)
    headers = {"X-Request-Id": entry.request_id, "Cache-Control": "no-cache", **charge.held.headers()}
    return StreamingResponse(stream.body(first, events), media_type="text/event-stream", headers=headers)


class _Stream:
    """The body of one SSE response, and its logging once it ends (however it ends)."""

    def __init__(
        self, ctx: ServeContext, entry: LogEntry, started: float, include_usage: bool, charge: _Charge
    ) -> None:
        self.ctx = ctx
        self.charge = charge
        self.entry = entry
        self.started = started
        self.include_usage = include_usage
        self.id = f"chatcmpl-{entry.request_id}"
        self.created = int(time.time())
        self.model = ctx.service.model_id

    def chunk(self, delta: ChunkDelta, finish: Any = None, **extra: Any) -> bytes:
        choices = [] if extra.pop("no_choices", False) else [ChunkChoice(delta=delta, finish_reason=finish)]
        chunk = ChatCompletionChunk(id=self.id, created=self.created, model=self.model, choices=choices, **extra)
        return _sse(chunk.model_dump(mode="json", exclude_none=True))

    def finished(self, state: RequestState) -> list[bytes]:
        view = RequestView.of(state, self.ctx.service.digest)
        out = [self.chunk(ChunkDelta(), "stop", workbench=view)]
        if self.include_usage:
            out.append(self.chunk(ChunkDelta(), usage=usage(state), no_choices=True))
        return [*out, b"data: [DONE]\n\n"]

    async def body(self, first: Any, events: AsyncGenerator[Any, None]) -> AsyncIterator[bytes]:
        from workbench.guardrails import raise_if_blocked
        from workbench.serve.streaming import Delta, Failed, Finished

        entry, ctx = self.entry, self.ctx
        text = ""
        event = first
        try:
            yield self.chunk(ChunkDelta(role="assistant", content=""))
            while True:
                if isinstance(event, Delta):
                    if event.text:
                        try:
                            await self.charge.text(event.text)
                        except WorkbenchError as exc:  # out of budget: cut, explicitly
                            event = Failed(exc, committed=True)
                            continue
                        if entry.ttft_s is None:
                            entry.ttft_s = time.perf_counter() - self.started
                            ctx.metrics.ttft.observe(entry.ttft_s)
                        text += event.text
                        yield self.chunk(ChunkDelta(content=event.text))
                elif isinstance(event, Finished):
                    state = event.state
                    try:
                        raise_if_blocked(state)
                    except GuardrailBlocked as exc:
                        event = Failed(exc, committed=True)
                        continue
                    if event.model_ttft_s is not None:
                        ctx.metrics.model_ttft.observe(event.model_ttft_s)
                    for line in self.finished(state):
                        yield line
                    entry.with_state(state)
                    ctx.finish(entry, self.started, state)
                    await self.charge.end(state)
                    return
                elif isinstance(event, Failed):
                    yield _sse_error(event.error, entry.request_id)
                    entry.answer = text or None
                    ctx.failed(entry, self.started, event.error)
                    return
                try:
                    event = await anext(events)
                except StopAsyncIteration:
                    event = Failed(WorkbenchError("the stream ended before the answer was complete"), committed=True)
                except WorkbenchError as exc:
                    event = Failed(exc, committed=True)
        except (asyncio.CancelledError, GeneratorExit):
            entry.answer = text or None
            ctx.failed(entry, self.started, asyncio.CancelledError())
            raise
        except Exception as exc:  # a bug: still an explicit error event, never a normal end
            log.exception("stream %s failed", entry.request_id)
            yield _sse_error(WorkbenchError("internal server error"), entry.request_id)
            ctx.failed(entry, self.started, exc)
        finally:
            await events.aclose()
