"""A DuckDB file of past judgments, so scoring the same rows again costs no model call.

Only successful verdicts are stored: a parse failure or a provider error is worth trying
again on the next run, and caching it would hide a transient outage as a permanent failure.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path
from typing import Any

from workbench.core.errors import EvaluationError, MissingDependency

log = logging.getLogger(__name__)

_DDL = """
CREATE TABLE IF NOT EXISTS judgments (
    key VARCHAR PRIMARY KEY,
    metric VARCHAR NOT NULL,
    judge VARCHAR NOT NULL,
    prompt_version VARCHAR NOT NULL,
    value DOUBLE NOT NULL,
    created TIMESTAMP DEFAULT current_timestamp
)
"""


def judgment_key(*parts: Any) -> str:
    """A stable content hash of JSON-serialisable parts (dict keys sorted)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class JudgmentCache:
    """Key -> judged value in a DuckDB file; the file and its folder are created on first use."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._con: Any = None
        self._lock = threading.Lock()

    def _connection(self) -> Any:
        if self._con is None:
            try:
                import duckdb
            except ImportError as exc:
                raise MissingDependency("duckdb", "retrieval") from exc
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._con = duckdb.connect(str(self.path))
                self._con.execute(_DDL)
            except duckdb.Error as exc:
                raise EvaluationError(f"cannot open the judge cache {self.path}: {exc}") from exc
        return self._con

    def get(self, key: str) -> float | None:
        with self._lock:
            row = self._connection().execute("SELECT value FROM judgments WHERE key = ?", [key]).fetchone()
        return None if row is None else float(row[0])

    def put(self, key: str, *, metric: str, judge: str, prompt_version: str, value: float) -> None:
        with self._lock:
            self._connection().execute(
                "INSERT OR REPLACE INTO judgments (key, metric, judge, prompt_version, value) VALUES (?, ?, ?, ?, ?)",
                [key, metric, judge, prompt_version, value],
            )

    def __len__(self) -> int:
        with self._lock:
            row = self._connection().execute("SELECT count(*) FROM judgments").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None
