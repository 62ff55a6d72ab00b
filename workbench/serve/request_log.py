"""The request log: every served request, masked, in DuckDB under the bundle's `var/` folder.

DuckDB allows one writing process per file, so each server process writes its own file,
`<folder>/<pid>.duckdb`, and readers union every file of the folder
(`workbench.evaluation.rows.read_duckdb_rows`, which `python -m workbench score` uses).
A process opens its file only for the length of one write, so other processes (another
worker looking up a response id, `score` reading the log) get in between.

Writes happen on one thread per process, never on the event loop: `record` queues an entry
and returns; queued entries are written together in one transaction. Feedback runs on the
same thread after every entry queued before it, so feedback on a response just served finds it.

Questions, answers, errors and feedback comments pass through the config's PII masker before
they are written.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from workbench.core.errors import TrackingError
from workbench.core.state import RequestState
from workbench.serve._background import BackgroundWriter
from workbench.serve.api import timings
from workbench.tracking._duckdb import duckdb_transaction
from workbench.tracking.feedback import FeedbackRecord, FeedbackSink, record_feedback

log = logging.getLogger(__name__)

TABLE = "requests"
_DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    request_id VARCHAR PRIMARY KEY,
    created_at TIMESTAMP NOT NULL,
    endpoint VARCHAR NOT NULL,
    status INTEGER NOT NULL,
    error VARCHAR,
    question VARCHAR,
    answer VARCHAR,
    abstained BOOLEAN,
    blocked BOOLEAN,
    route VARCHAR,
    route_score DOUBLE,
    contexts VARCHAR[],
    retrieved VARCHAR[],
    verdicts VARCHAR,
    timings VARCHAR,
    tokens_in INTEGER,
    tokens_out INTEGER,
    cost DOUBLE,
    models VARCHAR[],
    fallback_used BOOLEAN,
    stream BOOLEAN,
    latency_s DOUBLE,
    ttft_s DOUBLE,
    bundle_digest VARCHAR,
    pid INTEGER,
    model_choice VARCHAR,
    tool_calls VARCHAR
)
"""
# Columns added after the first release: a file an older server wrote gains them on next write.
_ADDED = ("model_choice VARCHAR", "tool_calls VARCHAR")


@dataclass
class LogEntry:
    """One served request; `from_state` fills the pipeline's part."""

    request_id: str
    endpoint: str
    status: int
    question: str | None
    bundle_digest: str = ""
    error: str | None = None
    answer: str | None = None
    abstained: bool | None = None
    blocked: bool | None = None
    route: str | None = None
    route_score: float | None = None
    contexts: list[str] = field(default_factory=list)
    retrieved: list[str] = field(default_factory=list)
    verdicts: str = "[]"
    timings: str = "{}"
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    models: list[str] = field(default_factory=list)
    fallback_used: bool = False
    stream: bool = False
    latency_s: float | None = None
    ttft_s: float | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC).replace(tzinfo=None))
    pid: int = field(default_factory=os.getpid)
    model_choice: str | None = None  # JSON: the model a route's selection picked, and why
    tool_calls: str = "[]"

    def with_state(self, state: RequestState, *, answer: bool = True) -> LogEntry:
        """This entry with what `state` holds: the masked query the pipeline saw, the answer,
        contexts, verdicts, timings and usage."""
        self.question = state.query
        if answer:
            self.answer = state.answer
            self.abstained = state.abstained
        self.blocked = state.blocked
        self.route, self.route_score = state.route, state.route_score
        self.contexts = [c.text for c in state.chunks]
        self.retrieved = [f"{c.doc_id}:{c.start}-{c.end}" for c in state.chunks]
        self.verdicts = json.dumps([v.model_dump(mode="json") for v in state.verdicts])
        self.timings = json.dumps(timings(state))
        self.tokens_in, self.tokens_out, self.cost = state.tokens_in, state.tokens_out, state.cost
        self.models = [c.endpoint for c in state.calls]
        self.fallback_used = state.fallback_used
        if state.model_choice is not None:
            self.model_choice = state.model_choice.model_dump_json()
        self.tool_calls = json.dumps([c.model_dump(mode="json") for c in state.tool_calls])
        return self


COLUMNS = tuple(LogEntry.__dataclass_fields__)


# Opening, writing and closing the DuckDB file costs ~45 ms of CPU whatever the rows: at most
# one write a second, however many requests (see `_background`). The file stays closed between
# writes, so `score` and other workers can read it.
WRITE_INTERVAL_S = 1.0


class RequestLog(BackgroundWriter[LogEntry]):
    """This process's request log file in `folder`, and lookups across the folder's files.

    `mask` is the config's PII masker (None: nothing to mask); `run_id` is what feedback rows
    are filed under (the feedback table is the session's: `run_id`, `question_id` = response id).
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        mask: Callable[[str], str] | None = None,
        run_id: str = "served",
        tracker: FeedbackSink | None = None,
    ) -> None:
        super().__init__(thread_name="request-log", min_interval_s=WRITE_INTERVAL_S)
        self.folder = Path(folder)
        self.path = self.folder / f"{os.getpid()}.duckdb"
        self.mask = mask
        self.run_id = run_id
        self.tracker = tracker
        self._trace_ids: dict[str, str] = {}
        self.written = 0

    # -- writing -----------------------------------------------------------------------------

    def _masked(self, text: str | None) -> str | None:
        return self.mask(text) if self.mask is not None and text else text

    def _write(self, batch: list[LogEntry]) -> None:
        rows = []
        for entry in batch:
            row = asdict(entry)
            for name in ("question", "answer", "error", "tool_calls"):
                row[name] = self._masked(row[name])
            rows.append([row[c] for c in COLUMNS])
        placeholders = ", ".join("?" for _ in COLUMNS)
        sql = f"INSERT OR REPLACE INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({placeholders})"

        def write() -> None:
            with duckdb_transaction(self.path, "write the request log") as con:
                con.execute(_DDL)
                for column in _ADDED:
                    con.execute(f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS {column}")
                con.executemany(sql, rows)

        try:
            _waiting_out_readers(write)
            self.written += len(rows)
        except Exception:  # a full disk must not take the server down; the log says what was lost
            log.exception("could not write %d request log rows to %s", len(rows), self.path)

    def note_trace(self, request_id: str, trace_id: str) -> None:
        """Remember the MLflow trace of a request, so feedback on it lands on the trace too."""
        with self._lock:
            self._trace_ids[request_id] = trace_id
            while len(self._trace_ids) > 100_000:
                self._trace_ids.pop(next(iter(self._trace_ids)))

    # -- feedback ----------------------------------------------------------------------------

    def feedback(self, response_id: str, thumbs: str, comment: str, user: str) -> FeedbackRecord | None:
        """Store feedback on a served response (run it through `submit`); None when no file of
        the folder knows `response_id`."""
        if not self.knows(response_id):
            return None
        with self._lock:
            trace_id = self._trace_ids.get(response_id)
        return _waiting_out_readers(
            lambda: record_feedback(
                duckdb_path=self.path,
                run_id=self.run_id,
                question_id=response_id,
                thumbs=thumbs,  # type: ignore[arg-type]
                comment=comment,
                trace_id=trace_id,
                tracker=self.tracker if trace_id else None,
                user=user,
                mask=self.mask,
            )
        )

    def knows(self, request_id: str) -> bool:
        """Whether any log file of the folder (this process's first) holds `request_id`."""
        files = [self.path, *(p for p in sorted(self.folder.glob("*.duckdb")) if p != self.path)]
        return any(_has_request(p, request_id) for p in files if p.is_file())


T = TypeVar("T")
LOCK_WAIT_S = 10.0


def _locked(exc: BaseException) -> bool:
    import duckdb

    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, duckdb.IOException) and "lock" in str(cause).lower():
            return True
        cause = cause.__cause__
    return False


def _waiting_out_readers(fn: Callable[[], T]) -> T:
    """`fn()`, tried again while another process (a reader: `score`, another worker) holds the
    file's lock; readers hold it for one short query."""
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            return fn()
        except TrackingError as exc:
            if not _locked(exc) or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.01, 0.05))


def _has_request(path: Path, request_id: str, attempts: int = 40) -> bool:
    import duckdb

    for attempt in range(attempts):
        try:
            with duckdb.connect(str(path), read_only=True) as con:
                tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
                if TABLE not in tables:
                    return False
                row = con.execute(f"SELECT 1 FROM {TABLE} WHERE request_id = ? LIMIT 1", [request_id]).fetchone()
                return row is not None
        except duckdb.IOException:
            # Another process is writing its file right now: writes are short, try again.
            if attempt == attempts - 1:
                raise
            time.sleep(0.05)
    return False
