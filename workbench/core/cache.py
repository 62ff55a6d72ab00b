"""A stage cache that outlives the process, so a sweep or `eval` reuses unchanged stages.

SQLite in WAL mode rather than DuckDB: several processes (a notebook and the CLI) may use one
cache at once, and DuckDB allows a single writing process per file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from workbench.core.errors import WorkbenchError


class SqliteStageCache:
    """Stage outputs by content key, in one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("CREATE TABLE IF NOT EXISTS stage_cache (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                conn.commit()
            except (OSError, sqlite3.Error) as exc:
                raise WorkbenchError(f"stage cache {self.path} cannot be opened: {exc}") from exc
            self._conn = conn
        return self._conn

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._connect().execute("SELECT value FROM stage_cache WHERE key = ?", (key,)).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        value: dict[str, Any] = json.loads(row[0])
        return value

    def put(self, key: str, value: dict[str, Any]) -> None:
        text = json.dumps(value, default=str)
        with self._lock:
            conn = self._connect()
            conn.execute("INSERT OR REPLACE INTO stage_cache (key, value) VALUES (?, ?)", (key, text))
            conn.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._connect().execute("SELECT count(*) FROM stage_cache").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
