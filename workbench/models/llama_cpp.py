"""Local GGUF models through llama-cpp-python, loaded lazily and called under a lock."""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
from typing import Any

from workbench.core.errors import MissingDependency, ProviderError
from workbench.core.protocols import Completion, GenerationRequest
from workbench.core.resources import resolve_source
from workbench.core.schema import LlamaCppEndpoint
from workbench.models._errors import ProviderRejected
from workbench.models._messages import chat_messages, merged_params

log = logging.getLogger(__name__)


class LlamaCppModel:
    """A `ChatModel` over `llama_cpp.Llama.create_chat_completion`.

    The constructor only stores the config; weights load on first use or in `warm_up()`.
    A `Llama` object is not thread-safe, so every call holds one re-entrant lock; async calls
    run in a worker thread to keep the event loop free.
    """

    def __init__(self, config: LlamaCppEndpoint) -> None:
        self.config = config
        self._llm: Any = None
        self._model_name = ""
        self._lock = threading.RLock()

    @property
    def model_name(self) -> str:
        return self._model_name

    def warm_up(self) -> None:
        self._load()

    def _load(self) -> Any:
        with self._lock:
            if self._llm is None:
                try:
                    from llama_cpp import Llama
                except ImportError as exc:
                    raise MissingDependency("llama-cpp-python", "local") from exc
                path = resolve_source(self.config.source)
                log.info("loading GGUF %s (n_ctx=%d)", path, self.config.n_ctx)
                self._llm = Llama(
                    model_path=str(path),
                    n_ctx=self.config.n_ctx,
                    n_threads=self.config.n_threads,
                    verbose=False,
                )
                self._model_name = path.stem
                # Free the weights before interpreter shutdown tears down llama.cpp's globals;
                # Llama.__del__ at that point prints an ignored TypeError.
                atexit.register(self.close)
            return self._llm

    def close(self) -> None:
        with self._lock:
            if self._llm is not None:
                self._llm.close()
                self._llm = None

    def _kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"messages": chat_messages(request), **merged_params(self.config.params, request)}
        if request.json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": request.json_schema}
        return kwargs

    def complete(self, request: GenerationRequest) -> Completion:
        kwargs = self._kwargs(request)
        with self._lock:
            llm = self._load()
            try:
                response = llm.create_chat_completion(**kwargs)
            except TypeError as exc:  # an unknown key in `params`
                raise ProviderRejected(f"llama.cpp rejected the parameters: {exc}") from exc
            except ValueError as exc:  # e.g. the prompt exceeds the context window
                raise ProviderRejected(f"llama.cpp rejected the request: {exc}") from exc
            except RuntimeError as exc:
                raise ProviderError(f"llama.cpp failed: {exc}") from exc
        usage = response.get("usage") or {}
        text = response["choices"][0]["message"].get("content") or ""
        return Completion(
            text=text.strip(),
            tokens_in=int(usage.get("prompt_tokens", 0)),
            tokens_out=int(usage.get("completion_tokens", 0)),
            model=self._model_name,
        )

    async def acomplete(self, request: GenerationRequest) -> Completion:
        return await asyncio.to_thread(self.complete, request)
