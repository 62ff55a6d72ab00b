"""`JobStore`: every job by id, in SQLite (`var/jobs.sqlite` of the bundle), shared by the API
and the workers of one machine.

Delivery is at least once, so every write is idempotent and conditional:

- `create` is `INSERT OR IGNORE`: a job id is recorded once;
- `start` moves a `queued` or `running` job (a worker died mid-job) to `running` and counts the
  attempt; it refuses a job that already finished, so a redelivered finished job is acked
  without running again;
- `finish` and `fail` change only a job that has not finished: the first result recorded is
  the result, a second one is dropped.

Each transition that wins is also appended to `events`, which shows what happened to a job
(two `started`, one `done` after a worker was killed). WAL lets the API read while a worker
writes; `BEGIN IMMEDIATE` serialises the transitions across processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.serve.jobs.api import JobView

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    request TEXT NOT NULL,
    team TEXT NOT NULL,
    key_id TEXT NOT NULL,
    callback_url TEXT,
    status TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    result TEXT,
    error TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    event TEXT NOT NULL,
    pid INTEGER NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_job ON events (job_id);
"""

UNFINISHED = "status IN ('queued', 'running')"


@dataclass(frozen=True)
class Job:
    """A stored job: its request (the validated body, as JSON) and who asked for it."""

    id: str
    kind: str
    request: dict[str, Any]
    team: str
    key_id: str
    callback_url: str | None = None

    def message(self) -> bytes:
        """The broker message: the whole job, so a worker can record it if the API did not."""
        return json.dumps(
            {"id": self.id, "kind": self.kind, "request": self.request, "team": self.team, "key_id": self.key_id}
            | {"callback_url": self.callback_url}
        ).encode()

    @classmethod
    def from_message(cls, body: bytes) -> Job:
        data = json.loads(body)
        return cls(**data)


# What a broker calls with each job it delivers (the worker's run-and-record step).
Handler = Callable[[Job], Awaitable[None]]


class JobStore:
    """The jobs table at `path`. Each call opens its own connection: safe from any thread or
    process, and a worker killed mid-write leaves nothing half-done (one transaction each)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            # FULL: a result is on disk before the broker message is acked.
            db.execute("PRAGMA synchronous=FULL")
            yield db
        finally:
            db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @staticmethod
    def _event(db: sqlite3.Connection, job_id: str, event: str) -> None:
        db.execute(
            "INSERT INTO events (job_id, event, pid, at) VALUES (?, ?, ?, ?)", (job_id, event, os.getpid(), time.time())
        )

    def create(self, job: Job) -> bool:
        """Record `job` as queued; False if its id is already recorded (nothing changes)."""
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO jobs (id, kind, request, team, key_id, callback_url, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (job.id, job.kind, json.dumps(job.request), job.team, job.key_id, job.callback_url, time.time()),
            )
            if cursor.rowcount:
                self._event(db, job.id, "queued")
            return bool(cursor.rowcount)

    def start(self, job_id: str) -> bool:
        """Mark the job running (one more attempt); False if it finished already or is unknown."""
        with self._transaction() as db:
            cursor = db.execute(
                f"UPDATE jobs SET status = 'running', attempts = attempts + 1, started_at = ? "
                f"WHERE id = ? AND {UNFINISHED}",
                (time.time(), job_id),
            )
            if cursor.rowcount:
                self._event(db, job_id, "started")
            return bool(cursor.rowcount)

    def _end(self, job_id: str, status: str, result: dict[str, Any] | None, error: str | None) -> bool:
        with self._transaction() as db:
            cursor = db.execute(
                f"UPDATE jobs SET status = ?, result = ?, error = ?, finished_at = ? WHERE id = ? AND {UNFINISHED}",
                (status, None if result is None else json.dumps(result), error, time.time(), job_id),
            )
            if cursor.rowcount:
                self._event(db, job_id, status)
            return bool(cursor.rowcount)

    def finish(self, job_id: str, result: dict[str, Any]) -> bool:
        """Record the job's result; False if it had finished already (the result is dropped)."""
        return self._end(job_id, "done", result, None)

    def fail(self, job_id: str, error: str) -> bool:
        """Record why the job failed; False if it had finished already."""
        return self._end(job_id, "failed", None, error)

    def get(self, job_id: str) -> JobView | None:
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        data = dict(row)
        data.pop("request")
        data.pop("callback_url")
        data["result"] = None if data["result"] is None else json.loads(data["result"])
        return JobView(**data)

    def job(self, job_id: str) -> Job | None:
        """The job as enqueued (its request and caller)."""
        with self._connect() as db:
            row = db.execute(
                "SELECT id, kind, request, team, key_id, callback_url FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
        if row is None:
            return None
        return Job(row[0], row[1], json.loads(row[2]), row[3], row[4], row[5])

    def events(self, job_id: str) -> list[tuple[str, int]]:
        """(event, pid) in order: `queued`, `started` (once per attempt), `done` or `failed`."""
        with self._connect() as db:
            rows = db.execute("SELECT event, pid FROM events WHERE job_id = ? ORDER BY seq", (job_id,)).fetchall()
        return [(str(e), int(p)) for e, p in rows]
