"""Any server speaking the OpenAI chat-completions API (llama.cpp server, vLLM, OpenAI, ...).

The API key is read from the environment variable named by `api_key_env` at call time, so it
never sits in a config, a log or a bundle.
"""

from __future__ import annotations

import os
from collections.abc import Callable
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
from workbench.core.schema import OpenAICompatEndpoint
from workbench.core.tokens import estimate_tokens
from workbench.models._errors import ProviderRejected
from workbench.models._messages import chat_messages, merged_params

_RESPONSE_FORMAT: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "json_schema": lambda schema: {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}},
    "json_object": lambda schema: {"type": "json_object", "schema": schema},
}


def _excerpt(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None


def status_error(url: str, response: httpx.Response) -> ProviderError:
    """The error-tree member for a non-2xx response."""
    where = f"{url} returned HTTP {response.status_code}: {_excerpt(response.text)}"
    if response.status_code == 429:
        exc: ProviderError = RateLimited(where)
        exc.retry_after = _retry_after(response)  # type: ignore[attr-defined]
        return exc
    if response.status_code == 408:
        return ProviderTimeout(where)
    if response.status_code >= 500:
        return ProviderUnavailable(where)
    return ProviderRejected(where)


def transport_error(url: str, exc: httpx.TransportError) -> ProviderError:
    """The error-tree member for a connection-level failure."""
    if isinstance(exc, httpx.ConnectTimeout | httpx.ConnectError):
        return ProviderUnavailable(f"cannot reach {url}: {exc or type(exc).__name__}")
    if isinstance(exc, httpx.TimeoutException):
        return ProviderTimeout(f"{url} timed out: {exc or type(exc).__name__}")
    return ProviderUnavailable(f"{url} failed: {exc or type(exc).__name__}")


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
        self.url = config.base_url.rstrip("/") + "/chat/completions"

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
            raise status_error(self.url, response)
        try:
            data = response.json()
            text = data["choices"][0]["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise ProviderError(f"{self.url} sent a malformed completion: {_excerpt(response.text)}") from exc
        usage = data.get("usage") or {}
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
            model=str(data.get("model") or self.config.model),
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
            response = self._sync_client().post(self.url, json=body, headers=headers, timeout=self.config.timeout_s)
        except httpx.TransportError as exc:
            raise transport_error(self.url, exc) from exc
        return self._parse(request, response)

    async def acomplete(self, request: GenerationRequest) -> Completion:
        body, headers = self.payload(request), self._headers()
        try:
            response = await self._aclient().post(self.url, json=body, headers=headers, timeout=self.config.timeout_s)
        except httpx.TransportError as exc:
            raise transport_error(self.url, exc) from exc
        return self._parse(request, response)

    def close(self) -> None:
        """Close the sync client if this model created it (injected clients are the caller's)."""
        if self._client is not None and self._client in self._owned:
            self._client.close()

    async def aclose(self) -> None:
        if self._async_client is not None and self._async_client in self._owned:
            await self._async_client.aclose()
