"""Served requests as MLflow traces (off by default; `serve --trace`).

Traces are the ones `workbench.tracking.traces` builds for evaluation runs (a root span and
one span per stage), logged in batches on a thread of their own so that a slow tracking
server never delays an answer. Each trace is tagged with the request id as its question id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from workbench.core.state import RequestState
from workbench.serve._background import BackgroundWriter

log = logging.getLogger(__name__)


class TraceWriter(BackgroundWriter[RequestState]):
    """Queue request states (`record`); a worker thread logs them to `tracker` (an
    `MlflowTracker`) under `experiment`. `on_trace(request_id, trace_id)` is told each trace's id."""

    def __init__(self, tracker: Any, experiment: str, *, batch: int = 64) -> None:
        super().__init__(thread_name="request-traces")
        self.tracker = tracker
        self.experiment = experiment
        self.batch = batch
        self.on_trace: Callable[[str, str], None] | None = None
        self.logged = 0

    def _write(self, batch: list[RequestState]) -> None:
        for start in range(0, len(batch), self.batch):
            states = batch[start : start + self.batch]
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
