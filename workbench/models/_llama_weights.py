"""Loaded llama.cpp weights: a `Llama`, the lock its calls hold and the thread they run on.

A `LlamaCppModel` owns one `LoadedLlama` by default. A `LlamaWeights` (made by a sweep and
passed to every model it builds) hands the same `LoadedLlama` to all models of one GGUF file,
context size and thread count, so the variants of a sweep load each model once and their calls
queue on one lock and one worker thread.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import functools
import logging
import threading
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

from workbench.core.errors import MissingDependency
from workbench.core.offline import offline_environment
from workbench.core.resources import resolve_source
from workbench.core.schema import LlamaCppEndpoint

log = logging.getLogger(__name__)


class LoadedLlama:
    """One `Llama`, loaded on first use, with everything its callers share.

    `lock` serializes calls (a `Llama` is not thread-safe); async calls run on the one-thread
    executor behind `submit`; the cancel flags of calls in flight and the queued calls are kept
    by owner, so one model sharing the weights can stop its own calls and leave the others be.
    """

    def __init__(self, locate: Callable[[], Path], *, n_ctx: int, n_threads: int | None) -> None:
        self.lock = threading.RLock()
        self.llm: Any = None
        self.model_name = ""
        self._locate = locate
        self._n_ctx = n_ctx
        self._n_threads = n_threads
        self._state_lock = threading.Lock()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._in_flight: dict[threading.Event, Hashable] = {}
        self._queued: dict[concurrent.futures.Future[Any], Hashable] = {}

    def load(self) -> Any:
        """The `Llama`, loaded now if it is not yet."""
        with self.lock:
            if self.llm is None:
                path = self._locate()
                log.info("loading GGUF %s (n_ctx=%d)", path, self._n_ctx)
                llm = _stoppable_llama()(
                    model_path=str(path), n_ctx=self._n_ctx, n_threads=self._n_threads, verbose=False
                )
                self.llm, self.model_name = llm, path.stem
                # Free the weights before interpreter shutdown tears down llama.cpp's globals;
                # Llama.__del__ at that point prints an ignored TypeError.
                atexit.register(self.close)
            return self.llm

    def started(self, flag: threading.Event, owner: Hashable) -> None:
        with self._state_lock:
            self._in_flight[flag] = owner

    def finished(self, flag: threading.Event) -> None:
        with self._state_lock:
            self._in_flight.pop(flag, None)

    def submit(
        self, owner: Hashable, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[Any]:
        """Queue `fn` on the worker thread, on behalf of `owner`."""
        with self._state_lock:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="llama-cpp")
            future = self._executor.submit(fn, *args, **kwargs)
            self._queued[future] = owner
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: concurrent.futures.Future[Any]) -> None:
        with self._state_lock:
            self._queued.pop(future, None)

    def stop(self, owner: Hashable) -> None:
        """Stop `owner`'s generations in flight and drop its queued calls; others carry on."""
        with self._state_lock:
            flags = [flag for flag, by in self._in_flight.items() if by is owner]
            queued = [future for future, by in self._queued.items() if by is owner]
        for flag in flags:
            flag.set()
        for future in queued:
            future.cancel()

    def close(self) -> None:
        """Stop every generation in flight, drop queued calls, free the weights. Idempotent; a
        later call loads the model again."""
        with self._state_lock:
            for flag in self._in_flight:
                flag.set()
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        with self.lock:  # a stopped generation releases it within a token
            if self.llm is not None:
                self.llm.close()
                self.llm = None
        atexit.unregister(self.close)


class LlamaWeights:
    """GGUF models shared by every `LlamaCppModel` built with this object: a sweep makes one and
    passes it to the models of all its variants.

    Each (GGUF file, `n_ctx`, `n_threads`) loads at most once, on first use, whatever the
    endpoints' other settings (`params`, `timeout_s`, ...); the models of one such key share one
    `Llama`, one lock and one worker thread, so their calls run one at a time. Closing a model
    stops only its own calls; `close()` here frees every model loaded.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: dict[tuple[Path, int, int | None], LoadedLlama] = {}

    def get(self, config: LlamaCppEndpoint) -> LoadedLlama:
        """The shared model for `config`'s file, context size and thread count (not loaded yet
        if no call needed it)."""
        path = resolve_source(config.source).resolve()
        key = (path, config.n_ctx, config.n_threads)
        with self._lock:
            loaded = self._loaded.get(key)
            if loaded is None:
                loaded = LoadedLlama(lambda: path, n_ctx=config.n_ctx, n_threads=config.n_threads)
                self._loaded[key] = loaded
            return loaded

    def __len__(self) -> int:
        """How many models are loaded now."""
        with self._lock:
            return sum(loaded.llm is not None for loaded in self._loaded.values())

    def close(self) -> None:
        """Stop every call in flight and free every loaded model; a later call loads again."""
        with self._lock:
            loaded = list(self._loaded.values())
        for each in loaded:
            each.close()


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
        # Tokens of the last completion's prompt: a stream reports no usage, so it is counted
        # here (the criteria first see the prompt's ids, then one more per sampled token).
        prompt_tokens = 0

        def create_completion(self, *args: Any, **kwargs: Any) -> Any:
            self.prompt_tokens = 0
            # Evaluate every prompt from its first token. llama-cpp-python otherwise keeps the
            # previous call's KV cache for a shared prefix and evaluates only the rest, in a
            # batch of another shape, which changes the logits slightly: on the quickstart
            # sweep one answer in 20 prompt pairs differed with the prompt that ran before it.
            # An answer must not depend on what was asked before (a cached or served answer
            # equals a fresh one), so each call pays its whole prompt.
            self.reset()

            def stop(ids: Any, _logits: Any) -> bool:
                if not self.prompt_tokens:
                    self.prompt_tokens = len(ids)
                return self.should_stop()

            # The chat handlers pass their own criteria (end-of-turn tokens), if any.
            ours = StoppingCriteriaList([stop])
            ours.extend(kwargs.get("stopping_criteria") or [])
            kwargs["stopping_criteria"] = ours
            return super().create_completion(*args, **kwargs)

    return StoppableLlama
