"""Local GGUF models through llama-cpp-python, loaded lazily and called under a lock.

A generation stops when its caller gives up: every call carries a cancel flag and a deadline
(`timeout_s` of the endpoint), checked after each generated token by a stopping criterion
(`create_chat_completion` takes none, so the loaded `Llama` adds it to every completion). A
stopped generation raises `ProviderTimeout` (never a cut-off answer) and releases the model's
lock within one token; only prompt evaluation, which checks nothing, can delay it. Async calls
run on the model's own one-thread executor, so a slow or abandoned generation never holds a
thread of the event loop's default executor, and a call cancelled before it started never runs.

The variants of a sweep pass one `LlamaWeights` to all their models: each GGUF then loads once,
and the models sharing it share its lock and worker thread too (`_llama_weights`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from workbench.core.errors import ProviderError, ProviderTimeout
from workbench.core.protocols import Completion, GenerationRequest
from workbench.core.resources import resolve_source
from workbench.core.schema import LlamaCppEndpoint
from workbench.core.tokens import estimate_tokens
from workbench.models._errors import ProviderRejected
from workbench.models._llama_weights import LlamaWeights, LoadedLlama, _never
from workbench.models._messages import chat_messages, merged_params

__all__ = ["LlamaCppModel", "LlamaWeights"]

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long a cancelled async call waits for its generation to notice the flag and release the
# lock. A token takes milliseconds; prompt evaluation (which checks no flag) takes longer.
STOP_GRACE_S = 10.0


class LlamaCppModel:
    """A `ChatModel` over `llama_cpp.Llama.create_chat_completion`.

    The constructor only stores the config; weights load on first use or in `warm_up()`.
    A `Llama` object is not thread-safe, so every call holds one lock.

    With `weights`, the model uses the `Llama` that `weights` loads for its GGUF file, `n_ctx`
    and `n_threads`, shared with every other model built with the same `weights`, and with it
    their lock and worker thread. `close()` then stops only this model's calls; the weights stay
    loaded until `weights.close()`.
    """

    def __init__(self, config: LlamaCppEndpoint, *, weights: LlamaWeights | None = None) -> None:
        self.config = config
        self._weights = weights
        self._loaded: LoadedLlama | None = None
        if weights is None:
            self._loaded = LoadedLlama(
                lambda: resolve_source(config.source), n_ctx=config.n_ctx, n_threads=config.n_threads
            )

    def _shared(self) -> LoadedLlama:
        if self._loaded is None:
            assert self._weights is not None
            self._loaded = self._weights.get(self.config)
        return self._loaded

    @property
    def model_name(self) -> str:
        return self._loaded.model_name if self._loaded is not None else ""

    @property
    def _lock(self) -> threading.RLock:
        return self._shared().lock

    @property
    def _llm(self) -> Any:
        return self._shared().llm

    @_llm.setter
    def _llm(self, llm: Any) -> None:  # tests hand in a fake `Llama`
        self._shared().llm = llm

    def warm_up(self) -> None:
        self._shared().load()

    def count_tokens(self, text: str) -> int | None:
        """Tokens of `text` by the model's own tokenizer; None until the weights are loaded
        (loading takes seconds, not something a rate limiter should wait for). Tokenizing reads
        only the vocabulary, so it needs no model lock."""
        llm = self._shared().llm
        if llm is None:
            return None
        return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def close(self) -> None:
        """Stop this model's generations in flight and drop its queued calls; free the weights
        unless they are shared (`weights.close()` frees those). Idempotent; a later call loads
        the model again if need be."""
        if self._weights is None:
            assert self._loaded is not None
            self._loaded.close()
        elif self._loaded is not None:
            self._loaded.stop(self)

    def _kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"messages": chat_messages(request), **merged_params(self.config.params, request)}
        if request.json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": request.json_schema}
        return kwargs

    def _locked(
        self, request: GenerationRequest, cancel: threading.Event | None, call: Callable[[Any, dict[str, Any]], T]
    ) -> T:
        """`call(llm, kwargs)` under the model lock, stoppable by `cancel` and `timeout_s`
        (waiting for the lock included); a stopped call raises `ProviderTimeout`."""
        deadline = time.monotonic() + self.config.timeout_s
        flag = cancel if cancel is not None else threading.Event()
        kwargs = self._kwargs(request)
        loaded = self._shared()
        if not loaded.lock.acquire(timeout=self.config.timeout_s):
            raise ProviderTimeout(f"llama.cpp model stayed busy for {self.config.timeout_s:g}s")
        loaded.started(flag, self)
        try:
            if flag.is_set():
                raise ProviderTimeout("llama.cpp call was cancelled before it started")
            llm = loaded.load()
            stopped = threading.Event()

            def should_stop() -> bool:
                if flag.is_set() or time.monotonic() >= deadline:
                    stopped.set()
                    return True
                return False

            llm.should_stop = should_stop
            try:
                result = call(llm, kwargs)
            except TypeError as exc:  # an unknown key in `params`
                raise ProviderRejected(f"llama.cpp rejected the parameters: {exc}") from exc
            except ValueError as exc:  # e.g. the prompt exceeds the context window
                raise ProviderRejected(f"llama.cpp rejected the request: {exc}") from exc
            except RuntimeError as exc:
                raise ProviderError(f"llama.cpp failed: {exc}") from exc
        finally:
            if loaded.llm is not None:
                loaded.llm.should_stop = _never
            loaded.finished(flag)
            loaded.lock.release()
        if stopped.is_set():
            why = "was cancelled" if flag.is_set() else f"did not finish within {self.config.timeout_s:g}s"
            raise ProviderTimeout(f"llama.cpp generation {why}; stopped after the last token")
        return result

    def complete(self, request: GenerationRequest, *, cancel: threading.Event | None = None) -> Completion:
        """Generate under the model lock; raise `ProviderTimeout` if `timeout_s` passes (waiting
        for the lock included) or `cancel` is set before the answer is complete."""
        response = self._locked(request, cancel, lambda llm, kwargs: llm.create_chat_completion(**kwargs))
        usage = response.get("usage") or {}
        text = response["choices"][0]["message"].get("content") or ""
        return Completion(
            text=text.strip(),
            tokens_in=int(usage.get("prompt_tokens", 0)),
            tokens_out=int(usage.get("completion_tokens", 0)),
            model=self.model_name,
        )

    def stream(
        self, request: GenerationRequest, emit: Callable[[str], None], *, cancel: threading.Event | None = None
    ) -> Completion:
        """`complete`, calling `emit` with each piece of text as it is generated (in this
        thread). Greedy decoding gives the text `complete` gives."""

        def run(llm: Any, kwargs: dict[str, Any]) -> tuple[str, int, int]:
            parts: list[str] = []
            for chunk in llm.create_chat_completion(**kwargs, stream=True):
                content = (chunk["choices"][0].get("delta") or {}).get("content")
                if content is None:  # the opening role chunk and the closing one carry none
                    continue
                parts.append(content)  # one chunk per generated token
                if content:
                    emit(content)
            return "".join(parts), len(parts), int(getattr(llm, "prompt_tokens", 0))

        text, tokens_out, tokens_in = self._locked(request, cancel, run)
        return Completion(
            text=text.strip(),
            # A stream reports no usage; the loaded `Llama` counts the prompt it evaluated.
            tokens_in=tokens_in or sum(estimate_tokens(m["content"]) for m in chat_messages(request)),
            tokens_out=tokens_out,
            model=self.model_name,
        )

    async def acomplete(self, request: GenerationRequest) -> Completion:
        """`complete` on this model's own worker thread (shared with the models sharing its
        weights). Cancelling the awaiting task (a timeout) stops the generation, and returns once
        the lock is free again."""
        flag = threading.Event()
        future = self._shared().submit(self, self.complete, request, cancel=flag)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            flag.set()
            if not future.cancel():  # already running: let it see the flag and let go of the lock
                await _settle(future, STOP_GRACE_S)
            raise

    def astream(self, request: GenerationRequest) -> AsyncIterator[str | Completion]:
        """`stream` on this model's worker thread, its pieces yielded here as they come, then
        the `Completion`. Closing the iterator early stops the generation (as cancelling
        `acomplete` does) and returns once the lock is free again."""
        return _pieces(self, request)


async def _settle(future: concurrent.futures.Future[Any], timeout: float) -> None:
    """Wait up to `timeout` for a running call to end, whatever its outcome."""
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    future.add_done_callback(lambda _: loop.call_soon_threadsafe(done.set))
    try:
        await asyncio.wait_for(done.wait(), timeout)
    except TimeoutError:
        log.warning("a cancelled llama.cpp call is still running after %gs", timeout)


async def _pieces(model: LlamaCppModel, request: GenerationRequest) -> AsyncIterator[str | Completion]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    flag = threading.Event()

    def emit(piece: str) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, piece)

    future = model._shared().submit(model, model.stream, request, emit, cancel=flag)
    # Queued after every piece the worker emitted, so the stream ends after them all.
    future.add_done_callback(lambda _: loop.call_soon_threadsafe(queue.put_nowait, _END))
    try:
        while (item := await queue.get()) is not _END:
            yield item
        if future.cancelled():  # dropped from the queue by `close()`
            raise ProviderTimeout("llama.cpp call was cancelled before it started")
        yield future.result()
    finally:
        if not future.done():  # the consumer left (a timeout, a failed commit, a client gone)
            flag.set()
            if not future.cancel():
                await _settle(future, STOP_GRACE_S)


_END = object()
