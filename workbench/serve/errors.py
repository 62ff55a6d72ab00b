"""How errors become HTTP responses: one table keyed by the error tree of `core/errors.py`.

The most specific class of an error's MRO found in `STATUS` decides the status code and the
`type` of the OpenAI-style error body. A provider that is down, timed out or behind an open
breaker is a 503 with `Retry-After`; a guardrail block is a 400 (413 for an oversized
question); a rate limit or token quota of the gateway is a 429, a spent dollar budget a 402,
both with Retry-After and the remaining budget; a `WorkbenchError` the table does not name is
a 500, and so is anything else (a bug).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from workbench.core import errors as E
from workbench.serve.api import ErrorDetail, ErrorResponse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Mapping:
    status: int
    type: str


STATUS: dict[type[E.WorkbenchError], Mapping] = {
    E.InputTooLarge: Mapping(413, "input_too_large"),
    E.GuardrailBlocked: Mapping(400, "guardrail_blocked"),
    E.RoutingError: Mapping(400, "routing_error"),
    E.ToolError: Mapping(422, "tool_error"),
    E.InvalidFeedback: Mapping(422, "invalid_request_error"),
    E.AuthError: Mapping(401, "authentication_error"),
    E.PaymentRequired: Mapping(402, "insufficient_quota"),
    E.QuotaExceeded: Mapping(429, "rate_limit_exceeded"),
    E.LimiterUnavailable: Mapping(503, "service_unavailable"),
    E.ProviderRejected: Mapping(502, "provider_rejected"),
    E.CircuitOpen: Mapping(503, "service_unavailable"),
    E.ProviderUnavailable: Mapping(503, "service_unavailable"),
    E.ProviderTimeout: Mapping(503, "service_unavailable"),
    E.RateLimited: Mapping(503, "service_unavailable"),
    E.ProviderError: Mapping(503, "service_unavailable"),
    E.WorkbenchError: Mapping(500, "server_error"),
}

# The error bodies each kind of endpoint declares in the OpenAPI schema.
_ERR: dict[str, Any] = {"model": ErrorResponse}
COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _ERR | {"description": "malformed JSON, or a guardrail blocked the question"},
    413: _ERR | {"description": "the body or the question is too large"},
    422: _ERR | {"description": "the body does not validate (wrong types, empty question or messages)"},
}
PIPELINE_ERRORS: dict[int | str, dict[str, Any]] = COMMON_ERRORS | {
    401: _ERR | {"description": "missing, unknown, revoked, expired or forged API key or JWT (when auth is on)"},
    402: _ERR | {"description": "the team's daily dollar budget is spent; see Retry-After"},
    429: _ERR | {"description": "a rate limit or daily token quota is reached; see Retry-After, x-ratelimit-*"},
    502: _ERR | {"description": "the model provider refused the request"},
    503: _ERR | {"description": "the model provider is unavailable; retry after Retry-After seconds"},
}


def mapping_of(exc: E.WorkbenchError) -> Mapping:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return STATUS[E.WorkbenchError]


def error_body(message: str, type_: str, *, code: str | None = None, param: str | None = None, request_id=None) -> dict:
    detail = ErrorDetail(message=message, type=type_, code=code, param=param, request_id=request_id)
    return ErrorResponse(error=detail).model_dump(mode="json")


def workbench_error_body(exc: E.WorkbenchError, request_id: str | None = None) -> tuple[int, dict[str, Any]]:
    mapping = mapping_of(exc)
    code = getattr(exc, "check", None) or type(exc).__name__
    shown = mapping.status < 500 or isinstance(exc, E.ProviderError | E.LimiterUnavailable)
    message = str(exc) if shown else "internal server error"
    return mapping.status, error_body(message, mapping.type, code=code, request_id=request_id)


class ApiError(HTTPException):
    """An HTTP-level refusal that is no error of the workbench's own (unknown model, unknown
    response id)."""

    def __init__(self, status: int, message: str, type_: str, *, param: str | None = None) -> None:
        super().__init__(status, message)
        self.type = type_
        self.param = param


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def validation_message(exc: RequestValidationError) -> tuple[int, str, str | None]:
    """(status, message, param): malformed JSON is a 400; anything else a 422 naming each field."""
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return 400, "the body is not valid JSON", None
    parts, param = [], None
    for e in errors[:5]:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        param = param or loc
        parts.append(f"{loc}: {e.get('msg', 'invalid')}")
    return 422, "; ".join(parts) or "the request does not validate", param


def install(
    app: Any, retry_after: Callable[[], int], refused: Callable[[Request, int, str], None] | None = None
) -> None:
    """Register the handlers on a FastAPI app; `retry_after` gives the seconds to advertise on
    503s; `refused(request, status, message)` hears of requests refused before any pipeline ran
    (invalid body, unknown model), so they can be logged too."""

    def tell(request: Request, status: int, message: str) -> None:
        if refused is not None and _request_id(request) is None:
            refused(request, status, message)

    async def on_workbench_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, E.WorkbenchError)
        status, body = workbench_error_body(exc, _request_id(request))
        if status >= 500 and status != 503:
            log.error("request failed: %s: %s", type(exc).__name__, exc)
        headers = {"Retry-After": str(retry_after())} if status == 503 else None
        if status == 401:
            # RFC 6750: a refused credential names the scheme to use; the reason is in the body.
            tell(request, status, body["error"]["message"])
            headers = {"WWW-Authenticate": "Bearer"}
        if isinstance(exc, E.QuotaExceeded | E.LimiterUnavailable):
            headers = limit_headers(exc)
        return JSONResponse(body, status_code=status, headers=headers)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        status, message, param = validation_message(exc)
        tell(request, status, message)
        kind = "invalid_json" if status == 400 else "invalid_request_error"
        return JSONResponse(error_body(message, kind, param=param, request_id=_request_id(request)), status_code=status)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        kind = getattr(exc, "type", None) or ("not_found" if exc.status_code == 404 else "invalid_request_error")
        tell(request, exc.status_code, str(exc.detail))
        body = error_body(str(exc.detail), kind, param=getattr(exc, "param", None), request_id=_request_id(request))
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    async def on_bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error (a workbench bug)", exc_info=exc)
        body = error_body("internal server error", "server_error", request_id=_request_id(request))
        return JSONResponse(body, status_code=500)

    app.add_exception_handler(E.WorkbenchError, on_workbench_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(Exception, on_bug)


def limit_headers(exc: E.QuotaExceeded | E.LimiterUnavailable) -> dict[str, str]:
    """Retry-After and, for a refusal, the remaining budget as OpenAI names it
    (`x-ratelimit-remaining-requests`, `x-ratelimit-remaining-tokens`)."""
    headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
    if isinstance(exc, E.QuotaExceeded):
        headers |= {f"x-ratelimit-remaining-{kind}": str(n) for kind, n in exc.remaining.items()}
    return headers


def retry_after_seconds(breakers: list[Any], default: int = 1) -> int:
    """Seconds a client should wait: an open breaker's cooldown (an upper bound on what is
    left of it), else `default`."""
    waits = [b.config.cooldown_s for b in breakers if b.state == "open"]
    return max([default, *(math.ceil(w) for w in waits)])
