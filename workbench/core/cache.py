"""A stage cache that outlives the process, so a sweep or `eval` reuses unchanged stages.

SQLite in WAL mode rather than DuckDB: several processes (a notebook, the CLI, sweep workers)
may use one cache at once, and DuckDB allows a single writing process per file. Under WAL,
readers never wait for a writer, and every write is one short autocommitted statement, so a
writer holds the lock for well under a millisecond; `busy_timeout` absorbs the rest.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core.errors import WorkbenchError

log = logging.getLogger(__name__)

DEFAULT_CACHE_FILE = ".workbench/stage_cache.sqlite"
_TABLE = "stage_outputs"
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {_TABLE} (
    key TEXT PRIMARY KEY,
    stage TEXT NOT NULL,
    value TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    created REAL NOT NULL
)"""


@dataclass(frozen=True)
class StageCacheInfo:
    """What a cache file holds, per stage kind."""

    path: Path
    file_bytes: int
    stages: dict[str, tuple[int, int]]  # stage kind -> (entries, bytes of stored values)

    @property
    def entries(self) -> int:
        return sum(n for n, _ in self.stages.values())


class SqliteStageCache:
    """Stage outputs by content key, in one SQLite file shared by any number of processes."""

    blocking = True

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # isolation_level=None: autocommit, so no statement leaves a transaction open.
                conn = sqlite3.connect(
                    self.path, check_same_thread=False, timeout=self.busy_timeout_s, isolation_level=None
                )
                conn.execute("PRAGMA journal_mode=WAL")
                # NORMAL under WAL never corrupts the file; a power cut may lose the last writes,
                # which for a cache only means recomputing them.
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(_SCHEMA)
                conn.execute(f"CREATE INDEX IF NOT EXISTS {_TABLE}_stage ON {_TABLE} (stage)")
                # Entries of the first format carried whole accumulated tuples: never reuse them.
                conn.execute("DROP TABLE IF EXISTS stage_cache")
            except (OSError, sqlite3.Error) as exc:
                raise WorkbenchError(f"stage cache {self.path} cannot be opened: {exc}") from exc
            self._conn = conn
        return self._conn

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._connect().execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise WorkbenchError(f"stage cache {self.path}: {exc}") from exc

    def get(self, key: str) -> dict[str, Any] | None:
        rows = self._execute(f"SELECT value FROM {_TABLE} WHERE key = ?", (key,))
        if not rows:
            self.misses += 1
            return None
        try:
            value: dict[str, Any] = json.loads(rows[0][0])
        except json.JSONDecodeError:
            log.warning("stage cache %s: unreadable entry %s dropped", self.path, key[:12])
            self._execute(f"DELETE FROM {_TABLE} WHERE key = ?", (key,))
            self.misses += 1
            return None
        self.hits += 1
        return value

    def put(self, key: str, value: dict[str, Any], stage: str = "") -> None:
        text = json.dumps(value, default=str)
        self._execute(
            f"INSERT OR REPLACE INTO {_TABLE} (key, stage, value, bytes, created) VALUES (?, ?, ?, ?, ?)",
            (key, stage, text, len(text.encode()), time.time()),
        )

    def info(self) -> StageCacheInfo:
        rows = self._execute(f"SELECT stage, count(*), sum(bytes) FROM {_TABLE} GROUP BY stage ORDER BY stage")
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file())
        return StageCacheInfo(self.path, size, {stage: (int(n), int(b or 0)) for stage, n, b in rows})

    def clear(self, stage: str | None = None) -> int:
        """Delete every entry, or those of one stage kind; returns how many were deleted."""
        where, params = ("WHERE stage = ?", (stage,)) if stage else ("", ())
        count = int(self._execute(f"SELECT count(*) FROM {_TABLE} {where}", params)[0][0])
        self._execute(f"DELETE FROM {_TABLE} {where}", params)
        if stage is None:
            self._execute("VACUUM")
        return count

    def __len__(self) -> int:
        return int(self._execute(f"SELECT count(*) FROM {_TABLE}")[0][0])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
