"""The sweep journal: one SQLite row per (sweep, variant, question, repeat), written as each
question finishes, so a sweep killed at any moment resumes with nothing lost or repeated.

Each row is its own autocommitted `INSERT OR IGNORE` under that primary key: a row is either
wholly in the journal or absent, and a row written twice (two resumed runs racing) stays one.
WAL mode lets a notebook read progress while a sweep writes.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.core.errors import TrackingError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sweeps (
    sweep_id TEXT PRIMARY KEY, name TEXT, spec TEXT, dataset TEXT, dataset_hash TEXT,
    status TEXT, elapsed_s REAL DEFAULT 0, parent_run_id TEXT, logged_as TEXT, created REAL, updated REAL
);
CREATE TABLE IF NOT EXISTS variants (
    sweep_id TEXT, variant TEXT, params TEXT, config TEXT, config_hash TEXT,
    pruned_at INTEGER, pruned_reason TEXT, PRIMARY KEY (sweep_id, variant)
);
CREATE TABLE IF NOT EXISTS rows (
    sweep_id TEXT, variant TEXT, question_id TEXT, repeat INTEGER, split TEXT, error TEXT,
    model_calls INTEGER, tokens INTEGER, cost REAL, data TEXT, created REAL,
    PRIMARY KEY (sweep_id, variant, question_id, repeat)
);
"""

# Columns added after a journal format shipped: an older journal gains them on open, so a sweep
# journal written by an earlier version keeps resuming instead of failing on a missing column.
_ADDED_COLUMNS: dict[str, dict[str, str]] = {"sweeps": {"logged_as": "TEXT"}}


def _add_missing_columns(db: sqlite3.Connection) -> None:
    for table, columns in _ADDED_COLUMNS.items():
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        for name, kind in columns.items():
            if name not in present:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")


@dataclass(frozen=True)
class Spent:
    """What a sweep has used so far, from its journal."""

    questions: int = 0
    model_calls: int = 0
    tokens: int = 0
    dollars: float = 0.0
    wall_time_s: float = 0.0


def _plain(value: Any) -> Any:
    """A JSON-safe copy of a result cell (numpy scalars and arrays, NaN as null)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


class Journal:
    """The journal file of every sweep under one session root."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            _add_missing_columns(self._db)
        except sqlite3.DatabaseError as exc:
            raise TrackingError(f"{self.path}: cannot open the sweep journal ({exc})") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _execute(self, sql: str, args: Iterable[Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, tuple(args))

    # --- the sweep and its variants ------------------------------------------------------
    def open_sweep(self, sweep_id: str, name: str, spec: str, dataset: str, dataset_hash: str) -> None:
        now = time.time()
        self._execute(
            "INSERT OR IGNORE INTO sweeps (sweep_id, name, spec, dataset, dataset_hash, status, created, updated)"
            " VALUES (?, ?, ?, ?, ?, 'running', ?, ?)",
            (sweep_id, name, spec, dataset, dataset_hash, now, now),
        )

    def set_status(self, sweep_id: str, status: str, *, parent_run_id: str | None = None) -> None:
        self._execute(
            "UPDATE sweeps SET status = ?, updated = ?, parent_run_id = COALESCE(?, parent_run_id) WHERE sweep_id = ?",
            (status, time.time(), parent_run_id, sweep_id),
        )

    def set_logged(self, sweep_id: str, parent_run_id: str, logged_as: str) -> None:
        self._execute(
            "UPDATE sweeps SET parent_run_id = ?, logged_as = ? WHERE sweep_id = ?",
            (parent_run_id, logged_as, sweep_id),
        )

    def add_elapsed(self, sweep_id: str, seconds: float) -> None:
        self._execute("UPDATE sweeps SET elapsed_s = elapsed_s + ? WHERE sweep_id = ?", (seconds, sweep_id))

    def sweep(self, sweep_id: str) -> dict[str, Any] | None:
        cur = self._execute("SELECT * FROM sweeps WHERE sweep_id = ?", (sweep_id,))
        found = cur.fetchone()
        return dict(zip([c[0] for c in cur.description], found, strict=True)) if found else None

    def add_variant(self, sweep_id: str, variant: str, params: dict[str, Any], config: str, config_hash: str) -> None:
        self._execute(
            "INSERT OR IGNORE INTO variants (sweep_id, variant, params, config, config_hash) VALUES (?, ?, ?, ?, ?)",
            (sweep_id, variant, json.dumps(_plain(params)), config, config_hash),
        )

    def prune(self, sweep_id: str, variant: str, rung: int, reason: str) -> None:
        self._execute(
            "UPDATE variants SET pruned_at = ?, pruned_reason = ? WHERE sweep_id = ? AND variant = ?",
            (rung, reason, sweep_id, variant),
        )

    def pruned(self, sweep_id: str) -> dict[str, tuple[int, str]]:
        cur = self._execute(
            "SELECT variant, pruned_at, pruned_reason FROM variants WHERE sweep_id = ? AND pruned_at IS NOT NULL",
            (sweep_id,),
        )
        return {v: (int(rung), reason) for v, rung, reason in cur.fetchall()}

    # --- rows ----------------------------------------------------------------------------
    def write(self, sweep_id: str, row: dict[str, Any]) -> bool:
        """Record one finished question; False if that key was already recorded."""
        cur = self._execute(
            "INSERT OR IGNORE INTO rows (sweep_id, variant, question_id, repeat, split, error, model_calls,"
            " tokens, cost, data, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                sweep_id,
                row["variant"],
                row["question_id"],
                int(row["repeat"]),
                row.get("split", "search"),
                row.get("error"),
                int(row.get("model_calls", 0)),
                int(row.get("tokens", 0)),
                float(row.get("cost_fresh", 0.0)),
                json.dumps(_plain(row)),
                time.time(),
            ),
        )
        return cur.rowcount == 1

    def done_keys(self, sweep_id: str) -> set[tuple[str, str, int]]:
        cur = self._execute("SELECT variant, question_id, repeat FROM rows WHERE sweep_id = ?", (sweep_id,))
        return {(v, q, int(r)) for v, q, r in cur.fetchall()}

    def forget_errors(self, sweep_id: str) -> int:
        """Drop the rows that errored, so that they run again (`--retry-errors`)."""
        cur = self._execute("DELETE FROM rows WHERE sweep_id = ? AND error IS NOT NULL", (sweep_id,))
        return cur.rowcount

    def spent(self, sweep_id: str) -> Spent:
        cur = self._execute(
            "SELECT count(*), coalesce(sum(model_calls), 0), coalesce(sum(tokens), 0), coalesce(sum(cost), 0)"
            " FROM rows WHERE sweep_id = ?",
            (sweep_id,),
        )
        questions, calls, tokens, dollars = cur.fetchone()
        found = self.sweep(sweep_id)
        elapsed = float(found["elapsed_s"] or 0.0) if found else 0.0
        return Spent(int(questions), int(calls), int(tokens), float(dollars), elapsed)

    def rows(self, sweep_id: str) -> pd.DataFrame:
        """Every recorded row of a sweep, in (variant, question, repeat) order."""
        cur = self._execute(
            "SELECT data FROM rows WHERE sweep_id = ? ORDER BY variant, question_id, repeat", (sweep_id,)
        )
        return pd.DataFrame([json.loads(data) for (data,) in cur.fetchall()])
