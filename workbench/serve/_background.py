"""`BackgroundWriter`: what the request log and the trace writer share. Items are queued from
any thread (the event loop included) and written in batches by one worker thread, so a slow
disk or tracking server never delays an answer.

Writes are at least `min_interval_s` apart: a DuckDB file opened for every request at one
request at a time cost ~30 ms of CPU per request on 2 cores (`benchmarks/bench_serve.py`),
taken from the answers running beside it. `flush`, `submit` and `close` cut a pending wait
short and write everything queued before they return."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class BackgroundWriter(ABC, Generic[T]):
    """Queue items with `record`; the one worker thread, started on first use (again after
    `close`), hands everything queued since its last write to `_write` in one call."""

    def __init__(self, thread_name: str, *, min_interval_s: float = 0.0) -> None:
        self._thread_name = thread_name
        self.min_interval_s = min_interval_s
        self._last_write = float("-inf")
        self._hurry = threading.Event()
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._pending: list[T] = []
        self._scheduled = False

    @abstractmethod
    def _write(self, batch: list[T]) -> None:
        """Write `batch` (never empty) on the worker thread; a failure is logged, not raised."""

    def record(self, item: T) -> None:
        """Queue `item`; it is written on the worker thread. Never blocks."""
        with self._lock:
            self._pending.append(item)
            if self._scheduled:
                return
            self._scheduled = True
        self._thread().submit(self._flush_when_due)

    def _flush_when_due(self) -> None:
        # On the worker thread: items queued while it waits join this one write.
        wait = self._last_write + self.min_interval_s - time.monotonic()
        if wait > 0:
            self._hurry.wait(wait)
        self._hurry.clear()
        self._flush()

    def _flush(self) -> None:
        with self._lock:
            batch, self._pending, self._scheduled = self._pending, [], False
        if batch:
            self._last_write = time.monotonic()
            self._write(batch)

    def _thread(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._thread_name)
            return self._executor

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run `fn` on the worker thread, after every item queued so far is written."""
        thread = self._thread()
        self._hurry.set()
        thread.submit(self._flush)
        return thread.submit(fn, *args)

    def flush(self) -> None:
        """Wait until everything queued so far is written."""
        thread = self._thread()
        self._hurry.set()
        thread.submit(self._flush).result()

    def close(self) -> None:
        """Write what is queued and stop the thread; idempotent (a later `record` starts it again)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            self._hurry.set()
            executor.submit(self._flush)
            executor.shutdown(wait=True)
