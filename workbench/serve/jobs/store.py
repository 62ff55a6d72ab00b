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
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.serve.jobs.api import JobView
from workbench.serve.principal import Principal

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
    finished_at REAL,
    key_limits TEXT,
    owner_pid INTEGER
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
# Columns newer than the first job stores: added to an older `jobs.sqlite` when it is opened.
_ADDED_COLUMNS = {"key_limits": "TEXT", "owner_pid": "INTEGER"}


@dataclass(frozen=True)
class Job:
    """A stored job: its request (the validated body, as JSON) and who asked for it."""

    id: str
    kind: str
    request: dict[str, Any]
    team: str
    key_id: str
    callback_url: str | None = None
    # The key's own limits (rpm, tpm, daily_tokens), so a worker charges the job as the API would.
    key_limits: dict[str, int] | None = None

    @classmethod
    def of(cls, job_id: str, kind: str, request: dict[str, Any], principal: Principal, callback_url: str | None) -> Job:
        own = {"rpm": principal.rpm, "tpm": principal.tpm, "daily_tokens": principal.daily_tokens}
        limits = {k: v for k, v in own.items() if v is not None}
        return cls(job_id, kind, request, principal.team, principal.key_id, callback_url, limits or None)

    def principal(self) -> Principal:
        """Who the job runs for, with the key's limits as they were when it was submitted."""
        return Principal(self.key_id, self.team, **(self.key_limits or {}))

    def message(self) -> bytes:
        """The broker message: the whole job, so a worker can record it if the API did not."""
        return json.dumps(
            {"id": self.id, "kind": self.kind, "request": self.request, "team": self.team, "key_id": self.key_id}
            | {"callback_url": self.callback_url, "key_limits": self.key_limits}
        ).encode()

    @classmethod
    def from_message(cls, body: bytes) -> Job:
        data = json.loads(body)
        return cls(**data)


_JOB_COLUMNS = "id, kind, request, team, key_id, callback_url, key_limits"


def _job(row: Sequence[Any]) -> Job:
    limits = None if row[6] is None else json.loads(row[6])
    return Job(row[0], row[1], json.loads(row[2]), row[3], row[4], row[5], limits)


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
            have = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
            for column, kind in _ADDED_COLUMNS.items():
                if column not in have:
                    db.execute(f"ALTER TABLE jobs ADD COLUMN {column} {kind}")

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
                "INSERT OR IGNORE INTO jobs "
                "(id, kind, request, team, key_id, callback_url, created_at, key_limits, owner_pid) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job.id,
                    job.kind,
                    json.dumps(job.request),
                    job.team,
                    job.key_id,
                    job.callback_url,
                    time.time(),
                    None if job.key_limits is None else json.dumps(job.key_limits),
                    os.getpid(),
                ),
            )
            if cursor.rowcount:
                self._event(db, job.id, "queued")
            return bool(cursor.rowcount)

    def start(self, job_id: str) -> bool:
        """Mark the job running (one more attempt); False if it finished already or is unknown."""
        with self._transaction() as db:
            cursor = db.execute(
                f"UPDATE jobs SET status = 'running', attempts = attempts + 1, started_at = ?, owner_pid = ? "
                f"WHERE id = ? AND {UNFINISHED}",
                (time.time(), os.getpid(), job_id),
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
        for private in ("request", "callback_url", "key_limits", "owner_pid"):
            data.pop(private)
        data["result"] = None if data["result"] is None else json.loads(data["result"])
        return JobView(**data)

    def job(self, job_id: str) -> Job | None:
        """The job as enqueued (its request and caller)."""
        with self._connect() as db:
            row = db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _job(row)

    def claim_orphans(self, alive: Callable[[int], bool]) -> list[Job]:
        """Unfinished jobs whose owner process (the server that queued them in process, or the
        worker that started them) is no longer `alive`, now owned by this process, oldest first:
        what a restarted server must queue again. Atomic, so two servers starting together do
        not both take a job."""
        with self._transaction() as db:
            rows = db.execute(
                f"SELECT {_JOB_COLUMNS}, owner_pid FROM jobs WHERE {UNFINISHED} ORDER BY created_at"
            ).fetchall()
            orphans = [row for row in rows if row[-1] is None or (row[-1] != os.getpid() and not alive(row[-1]))]
            for row in orphans:
                db.execute("UPDATE jobs SET owner_pid = ? WHERE id = ?", (os.getpid(), row[0]))
                self._event(db, row[0], "recovered")
        return [_job(row[:-1]) for row in orphans]

    def events(self, job_id: str) -> list[tuple[str, int]]:
        """(event, pid) in order: `queued`, `started` (once per attempt; `recovered` before it
        when a restarted server took the job over), `done` or `failed`."""
        with self._connect() as db:
            rows = db.execute("SELECT event, pid FROM events WHERE job_id = ? ORDER BY seq", (job_id,)).fetchall()
        return [(str(e), int(p)) for e, p in rows]
