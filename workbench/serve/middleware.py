"""Two ASGI middlewares: a request body limit (413, never a 500) and per-endpoint metrics."""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from workbench.serve.errors import ApiError, error_body
from workbench.serve.metrics import ServeMetrics


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"the request body is over the limit of {limit:,} bytes", "request_too_large")


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class BodyLimit:
    """Refuses a body over `max_bytes`: at once when Content-Length says so, else as soon as
    the bytes received pass it (raised as an HTTP 413 error inside the app)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await _send_json(send, 400, error_body("invalid Content-Length header", "invalid_request_error"))
                return
            if size > self.max_bytes:
                exc = _too_large(self.max_bytes)
                await _send_json(send, 413, error_body(str(exc.detail), exc.type))
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _too_large(self.max_bytes)
            return message

        await self.app(scope, limited, send)


class RequestMetrics:
    """Counts and times every HTTP request by its route's path template (unknown paths share
    one label, so a scan cannot grow the label set)."""

    def __init__(self, app: ASGIApp, metrics: ServeMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(endpoint, scope.get("method", ""), status, time.perf_counter() - started)
            if status >= 400:
                self.metrics.observe_error(endpoint, str(status))
