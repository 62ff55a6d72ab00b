"""Any server speaking the OpenAI chat-completions API (llama.cpp server, vLLM, OpenAI, ...).

The API key is read from the environment variable named by `api_key_env` at call time, so it
never sits in a config, a log or a bundle. Credentials written into `base_url` itself
(`https://user:pass@host`, `?api_key=...`) are redacted from every error and log line; user
and password are sent as basic auth rather than as part of the URL.
"""

from __future__ import annotations

import email.utils
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from workbench.core.errors import (
    ConfigError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from workbench.core.protocols import Completion, GenerationRequest
from workbench.core.redact import redact_text, redact_url
from workbench.core.schema import OpenAICompatEndpoint
from workbench.core.tokens import estimate_tokens
from workbench.models._errors import ProviderRejected
from workbench.models._messages import chat_messages, merged_params

_RESPONSE_FORMAT: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "json_schema": lambda schema: {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}},
    "json_object": lambda schema: {"type": "json_object", "schema": schema},
}

_DONE = object()  # the `data: [DONE]` that ends an OpenAI stream


def _excerpt(text: str, limit: int = 200) -> str:
    text = " ".join(redact_text(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A Retry-After header in seconds: delta-seconds, or an HTTP date (RFC 9110)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def status_error(url: str, response: httpx.Response) -> ProviderError:
    """The error-tree member for a non-2xx response; `url` appears with credentials redacted."""
    where = f"{redact_url(url)} returned HTTP {response.status_code}: {_excerpt(response.text)}"
    if response.status_code == 429:
        exc: ProviderError = RateLimited(where)
        exc.retry_after = retry_after_seconds(response.headers.get("retry-after"))  # type: ignore[attr-defined]
        return exc
    if response.status_code == 408:
        return ProviderTimeout(where)
    if response.status_code >= 500:
        return ProviderUnavailable(where)
    return ProviderRejected(where)


def transport_error(url: str, exc: httpx.TransportError) -> ProviderError:
    """The error-tree member for a connection-level failure, credentials redacted."""
    where, what = redact_url(url), redact_text(str(exc)) or type(exc).__name__
    if isinstance(exc, httpx.ConnectTimeout | httpx.ConnectError):
        return ProviderUnavailable(f"cannot reach {where}: {what}")
    if isinstance(exc, httpx.TimeoutException):
        return ProviderTimeout(f"{where} timed out: {what}")
    return ProviderUnavailable(f"{where} failed: {what}")


class OpenAICompatModel:
    """A `ChatModel` that POSTs to `{base_url}/chat/completions`.

    Pass `client` / `async_client` to inject transports (tests use `httpx.MockTransport`);
    otherwise one client of each kind is created on first use with the endpoint's timeout.
    """

    def __init__(
        self,
        config: OpenAICompatEndpoint,
        client: httpx.Client | None = None,
        async_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.config = config
        self._client = client
        self._async_client = async_client
        self._owned: list[httpx.Client | httpx.AsyncClient] = []
        try:
            base = httpx.URL(config.base_url)
            url = base.copy_with(path=base.path.rstrip("/") + "/chat/completions")  # keeps any ?query
        except httpx.InvalidURL as exc:
            # Not chained: httpx's message may quote the URL with its credentials.
            where = redact_url(config.base_url)
            raise ConfigError(
                f"invalid base_url {where!r} of model {config.model!r}: {redact_text(str(exc))}"
            ) from None
        # `user:pass@` travels as basic auth, so the URL httpx logs and we quote holds none.
        self._auth = httpx.BasicAuth(url.username, url.password) if url.userinfo else None
        self.url = str(url.copy_with(username=None, password=None)) if url.userinfo else str(url)
        self.where = redact_url(self.url)

    def _headers(self) -> dict[str, str]:
        name = self.config.api_key_env
        if name is None:
            return {}
        key = os.environ.get(name)
        if not key:
            raise ConfigError(f"environment variable {name} (api_key_env of model {self.config.model!r}) is not set")
        return {"Authorization": f"Bearer {key}"}

    def payload(self, request: GenerationRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": chat_messages(request),
            **merged_params(self.config.params, request),
        }
        if request.json_schema is not None:
            body["response_format"] = _RESPONSE_FORMAT[self.config.json_mode](request.json_schema)
        return body

    def _parse(self, request: GenerationRequest, response: httpx.Response) -> Completion:
        if response.status_code >= 400:
            raise status_error(self.where, response)
        try:
            data = response.json()
            text = data["choices"][0]["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise ProviderError(f"{self.where} sent a malformed completion: {_excerpt(response.text)}") from exc
        return self._completion(request, text, data.get("usage"), data.get("model"))

    def _completion(self, request: GenerationRequest, text: str, usage: Any, model: Any) -> Completion:
        # Servers that report no usage (some proxies, some streams) get estimates instead.
        usage = usage if isinstance(usage, dict) else {}
        tokens_in = usage.get("prompt_tokens")
        tokens_out = usage.get("completion_tokens")
        if tokens_in is None:
            tokens_in = sum(estimate_tokens(m["content"]) for m in chat_messages(request))
        if tokens_out is None:
            tokens_out = estimate_tokens(text)
        return Completion(
            text=text.strip(),
            tokens_in=int(tokens_in),
            tokens_out=int(tokens_out),
            model=str(model or self.config.model),
        )

    def _sync_client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=self.config.timeout_s)
            self._owned.append(self._client)
        return self._client

    def _aclient(self) -> httpx.AsyncClient:
        if self._async_client is None:
            self._async_client = httpx.AsyncClient(timeout=self.config.timeout_s)
            self._owned.append(self._async_client)
        return self._async_client

    def complete(self, request: GenerationRequest) -> Completion:
        body, headers = self.payload(request), self._headers()
        try:
            response = self._sync_client().post(
                self.url,
                json=body,
                headers=headers,
                auth=self._auth or httpx.USE_CLIENT_DEFAULT,
                timeout=self.config.timeout_s,
            )
        except httpx.TransportError as exc:
            raise transport_error(self.where, exc) from exc
        return self._parse(request, response)

    async def acomplete(self, request: GenerationRequest) -> Completion:
        body, headers = self.payload(request), self._headers()
        try:
            response = await self._aclient().post(
                self.url,
                json=body,
                headers=headers,
                auth=self._auth or httpx.USE_CLIENT_DEFAULT,
                timeout=self.config.timeout_s,
            )
        except httpx.TransportError as exc:
            raise transport_error(self.where, exc) from exc
        return self._parse(request, response)

    async def astream(self, request: GenerationRequest) -> AsyncIterator[str | Completion]:
        """The answer's pieces as the server sends them (server-sent events, `stream: true`),
        then the `Completion`, with the usage the server reports at the end when it honours
        `stream_options.include_usage` (estimated otherwise). Errors map as for `acomplete`;
        a connection lost mid-stream is `ProviderUnavailable`."""
        body = {**self.payload(request), "stream": True, "stream_options": {"include_usage": True}}
        headers = self._headers()
        parts: list[str] = []
        usage: Any = None
        model: Any = None
        try:
            async with self._aclient().stream(
                "POST",
                self.url,
                json=body,
                headers=headers,
                auth=self._auth or httpx.USE_CLIENT_DEFAULT,
                timeout=self.config.timeout_s,
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise status_error(self.where, response)
                async for line in response.aiter_lines():
                    event = self._event(line)
                    if event is None:
                        continue
                    if event is _DONE:
                        break
                    model = event.get("model") or model
                    usage = event.get("usage") or usage
                    for choice in event.get("choices") or ():
                        piece = (choice.get("delta") or {}).get("content")
                        if piece:
                            parts.append(piece)
                            yield piece
        except httpx.TransportError as exc:
            raise transport_error(self.where, exc) from exc
        yield self._completion(request, "".join(parts), usage, model)

    def _event(self, line: str) -> Any:
        """One SSE line's JSON event; None for anything else (comments, `event:` lines, blank
        separators); `_DONE` at the end marker."""
        if not line.startswith("data:"):
            return None
        data = line[5:].strip()
        if data == "[DONE]":
            return _DONE
        try:
            event = json.loads(data)
        except ValueError as exc:
            raise ProviderError(f"{self.where} sent a malformed stream event: {_excerpt(data)}") from exc
        if not isinstance(event, dict):
            raise ProviderError(f"{self.where} sent a malformed stream event: {_excerpt(data)}")
        if "error" in event:  # an error reported inside a stream that began with HTTP 200
            raise ProviderUnavailable(f"{self.where} failed mid-stream: {_excerpt(json.dumps(event['error']))}")
        return event

    def close(self) -> None:
        """Close the sync client if this model created it (injected clients are the caller's).
        Idempotent; a later call opens a new one."""
        client = self._client
        if client is not None and client in self._owned:
            self._owned.remove(client)
            self._client = None
            client.close()

    async def aclose(self) -> None:
        """Close the async client if this model created it, on the loop that used it. Idempotent."""
        client = self._async_client
        if client is not None and client in self._owned:
            self._owned.remove(client)
            self._async_client = None
            await client.aclose()
