"""`ServeContext`: what every route shares (the served pipeline, metrics, readiness), and the
one way a route runs the pipeline: with a request id, metrics, the request log and traces."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Literal

from fastapi import Request

from workbench.core.errors import WorkbenchError
from workbench.core.stage import Pipeline
from workbench.core.state import RequestState
from workbench.serve.errors import mapping_of
from workbench.serve.metrics import ServeMetrics
from workbench.serve.request_log import LogEntry
from workbench.serve.service import ServedPipeline

PIPELINE_ENDPOINTS = frozenset({"/v1/chat/completions", "/v1/ask", "/v1/retrieve"})
CLIENT_CLOSED = 499  # the client went away before the answer was complete (nginx's code)


@dataclass
class Readiness:
    status: Literal["pending", "ready", "failed"] = "pending"
    mismatches: list[str] = field(default_factory=list)


@dataclass
class ServeContext:
    service: ServedPipeline
    metrics: ServeMetrics
    readiness: Readiness = field(default_factory=Readiness)

    def new_request(self, request: Request, endpoint: str, question: str | None, *, stream: bool = False) -> LogEntry:
        """A request id (also on `request.state`, for error bodies) and its log entry."""
        request_id = uuid.uuid4().hex
        request.state.request_id = request_id
        return LogEntry(
            request_id=request_id,
            endpoint=endpoint,
            status=200,
            question=question,
            bundle_digest=self.service.digest,
            stream=stream,
        )

    def refused(self, request: Request, status: int, message: str) -> None:
        """Log a request to a pipeline endpoint refused before the pipeline ran (a 4xx)."""
        if request.url.path not in PIPELINE_ENDPOINTS:
            return
        entry = self.new_request(request, request.url.path, None)
        entry.status, entry.error = status, message
        self.finish(entry, time.perf_counter())

    def finish(self, entry: LogEntry, started: float, state: RequestState | None = None) -> None:
        """Log a request that ended (`entry.status` says how) and count what its state used."""
        entry.latency_s = time.perf_counter() - started
        self.service.request_log.record(entry)
        if state is not None:
            self.metrics.observe_state(state)
            if self.service.tracer is not None:
                self.service.tracer.record(state)
        self.metrics.observe_breakers(self.service.breakers())

    def failed(self, entry: LogEntry, started: float, exc: BaseException, state: RequestState | None = None) -> None:
        if isinstance(exc, WorkbenchError):
            entry.status = mapping_of(exc).status
        elif isinstance(exc, asyncio.CancelledError):
            entry.status = CLIENT_CLOSED
        else:
            entry.status = 500
        entry.error = "client disconnected" if entry.status == CLIENT_CLOSED else f"{type(exc).__name__}: {exc}"
        if state is not None:
            entry.with_state(state, answer=False)
        self.finish(entry, started, state)

    async def run(self, entry: LogEntry, pipeline: Pipeline, *, answer: bool = True) -> RequestState:
        """Run `pipeline` on the entry's question; a block raises its typed error. Every outcome
        is logged and counted."""
        from workbench.guardrails import raise_if_blocked

        started = time.perf_counter()
        assert entry.question is not None
        state: RequestState | None = None
        try:
            state = await pipeline.arun(RequestState(query=entry.question, request_id=entry.request_id))
            raise_if_blocked(state)
        except BaseException as exc:
            self.failed(entry, started, exc, state)
            raise
        entry.with_state(state, answer=answer)
        self.finish(entry, started, state)
        return state
