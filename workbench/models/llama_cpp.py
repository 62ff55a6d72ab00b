"""Local GGUF models through llama-cpp-python, loaded lazily and called under a lock.

A generation stops when its caller gives up: every call carries a cancel flag and a deadline
(`timeout_s` of the endpoint), checked after each generated token by a stopping criterion
(`create_chat_completion` takes none, so the loaded `Llama` adds it to every completion). A
stopped generation raises `ProviderTimeout` (never a cut-off answer) and releases the model's
lock within one token; only prompt evaluation, which checks nothing, can delay it. Async calls
run on the model's own one-thread executor, so a slow or abandoned generation never holds a
thread of the event loop's default executor, and a call cancelled before it started never runs.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from workbench.core.errors import MissingDependency, ProviderError, ProviderTimeout
from workbench.core.offline import offline_environment
from workbench.core.protocols import Completion, GenerationRequest
from workbench.core.resources import resolve_source
from workbench.core.schema import LlamaCppEndpoint
from workbench.models._errors import ProviderRejected
from workbench.models._messages import chat_messages, merged_params

log = logging.getLogger(__name__)

# How long a cancelled async call waits for its generation to notice the flag and release the
# lock. A token takes milliseconds; prompt evaluation (which checks no flag) takes longer.
STOP_GRACE_S = 10.0


class LlamaCppModel:
    """A `ChatModel` over `llama_cpp.Llama.create_chat_completion`.

    The constructor only stores the config; weights load on first use or in `warm_up()`.
    A `Llama` object is not thread-safe, so every call holds one lock.
    """

    def __init__(self, config: LlamaCppEndpoint) -> None:
        self.config = config
        self._llm: Any = None
        self._model_name = ""
        self._lock = threading.RLock()
        self._state_lock = threading.Lock()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._in_flight: set[threading.Event] = set()

    @property
    def model_name(self) -> str:
        return self._model_name

    def warm_up(self) -> None:
        self._load()

    def _load(self) -> Any:
        with self._lock:
            if self._llm is None:
                llama_class = _stoppable_llama()
                path = resolve_source(self.config.source)
                log.info("loading GGUF %s (n_ctx=%d)", path, self.config.n_ctx)
                self._llm = llama_class(
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
        """Stop generations in flight, drop queued calls, free the weights. Idempotent; a later
        call loads the model again."""
        with self._state_lock:
            for flag in self._in_flight:
                flag.set()
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        with self._lock:  # a stopped generation releases it within a token
            if self._llm is not None:
                self._llm.close()
                self._llm = None
        atexit.unregister(self.close)

    def _kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"messages": chat_messages(request), **merged_params(self.config.params, request)}
        if request.json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": request.json_schema}
        return kwargs

    def complete(self, request: GenerationRequest, *, cancel: threading.Event | None = None) -> Completion:
        """Generate under the model lock; raise `ProviderTimeout` if `timeout_s` passes (waiting
        for the lock included) or `cancel` is set before the answer is complete."""
        deadline = time.monotonic() + self.config.timeout_s
        flag = cancel if cancel is not None else threading.Event()
        kwargs = self._kwargs(request)
        if not self._lock.acquire(timeout=self.config.timeout_s):
            raise ProviderTimeout(f"llama.cpp model stayed busy for {self.config.timeout_s:g}s")
        with self._state_lock:
            self._in_flight.add(flag)
        try:
            if flag.is_set():
                raise ProviderTimeout("llama.cpp call was cancelled before it started")
            llm = self._load()
            stopped = threading.Event()

            def should_stop() -> bool:
                if flag.is_set() or time.monotonic() >= deadline:
                    stopped.set()
                    return True
                return False

            llm.should_stop = should_stop
            try:
                response = llm.create_chat_completion(**kwargs)
            except TypeError as exc:  # an unknown key in `params`
                raise ProviderRejected(f"llama.cpp rejected the parameters: {exc}") from exc
            except ValueError as exc:  # e.g. the prompt exceeds the context window
                raise ProviderRejected(f"llama.cpp rejected the request: {exc}") from exc
            except RuntimeError as exc:
                raise ProviderError(f"llama.cpp failed: {exc}") from exc
        finally:
            if self._llm is not None:
                self._llm.should_stop = _never
            with self._state_lock:
                self._in_flight.discard(flag)
            self._lock.release()
        if stopped.is_set():
            why = "was cancelled" if flag.is_set() else f"did not finish within {self.config.timeout_s:g}s"
            raise ProviderTimeout(f"llama.cpp generation {why}; stopped after the last token")
        usage = response.get("usage") or {}
        text = response["choices"][0]["message"].get("content") or ""
        return Completion(
            text=text.strip(),
            tokens_in=int(usage.get("prompt_tokens", 0)),
            tokens_out=int(usage.get("completion_tokens", 0)),
            model=self._model_name,
        )

    def _pool(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._state_lock:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="llama-cpp")
            return self._executor

    async def acomplete(self, request: GenerationRequest) -> Completion:
        """`complete` on this model's own worker thread. Cancelling the awaiting task (a
        timeout) stops the generation, and returns once the lock is free again."""
        flag = threading.Event()
        future = self._pool().submit(self.complete, request, cancel=flag)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            flag.set()
            if not future.cancel():  # already running: let it see the flag and let go of the lock
                await _settle(future, STOP_GRACE_S)
            raise


def _never() -> bool:
    return False


@functools.cache
def _stoppable_llama() -> type:
    """`llama_cpp.Llama` whose every completion also stops when `should_stop()` turns true."""
    offline_environment()
    try:
        from llama_cpp import Llama, StoppingCriteriaList
    except ImportError as exc:
        raise MissingDependency("llama-cpp-python", "local") from exc

    class StoppableLlama(Llama):  # type: ignore[misc]
        should_stop: Callable[[], bool] = staticmethod(_never)

        def create_completion(self, *args: Any, **kwargs: Any) -> Any:
            # The chat handlers pass their own criteria (end-of-turn tokens), if any.
            ours = StoppingCriteriaList([lambda _ids, _logits: self.should_stop()])
            ours.extend(kwargs.get("stopping_criteria") or [])
            kwargs["stopping_criteria"] = ours
            return super().create_completion(*args, **kwargs)

    return StoppableLlama


async def _settle(future: concurrent.futures.Future[Any], timeout: float) -> None:
    """Wait up to `timeout` for a running call to end, whatever its outcome."""
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    future.add_done_callback(lambda _: loop.call_soon_threadsafe(done.set))
    try:
        await asyncio.wait_for(done.wait(), timeout)
    except TimeoutError:
        log.warning("a cancelled llama.cpp call is still running after %gs", timeout)
