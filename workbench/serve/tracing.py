"""Served requests as MLflow traces (off by default; `serve --trace`).

Traces are the ones `workbench.tracking.traces` builds for evaluation runs (a root span and
one span per stage), logged in batches on a thread of their own so that a slow tracking
server never delays an answer. Each trace is tagged with the request id as its question id.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from workbench.core.state import RequestState

log = logging.getLogger(__name__)


class TraceWriter:
    """Queue request states; a worker thread logs them to `tracker` (an `MlflowTracker`) under
    `experiment`. `on_trace(request_id, trace_id)` is told each trace's id."""

    def __init__(self, tracker: Any, experiment: str, *, batch: int = 64) -> None:
        self.tracker = tracker
        self.experiment = experiment
        self.batch = batch
        self.on_trace: Callable[[str, str], None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._pending: list[RequestState] = []
        self._scheduled = False
        self.logged = 0

    def record(self, state: RequestState) -> None:
        with self._lock:
            self._pending.append(state)
            if self._scheduled:
                return
            self._scheduled = True
        self._thread().submit(self._flush)

    def _flush(self) -> None:
        with self._lock:
            pending, self._pending, self._scheduled = self._pending, [], False
        for start in range(0, len(pending), self.batch):
            states = pending[start : start + self.batch]
            ids = [s.request_id for s in states]
            try:
                trace_ids = self.tracker.log_traces(
                    experiment=self.experiment, run_id=None, states=states, question_ids=ids
                )
            except Exception:  # tracing is best effort; the request log has every request
                log.exception("could not log %d request traces", len(states))
                continue
            self.logged += len(trace_ids)
            if self.on_trace is not None:
                for request_id, trace_id in zip(ids, trace_ids, strict=False):
                    self.on_trace(request_id, trace_id)

    def _thread(self) -> ThreadPoolExecutor:
        """The one worker thread, started on first use (again after `close`)."""
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="request-traces")
            return self._executor

    def flush(self) -> None:
        """Wait until everything queued so far is written."""
        self._thread().submit(self._flush).result()

    def close(self) -> None:
        """Write what is queued and stop the thread; idempotent (a later `record` starts it again)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.submit(self._flush)
            executor.shutdown(wait=True)
