"""The sweep journal opens journals written by earlier versions."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from workbench.sweeps.journal import Journal

# The `sweeps` table as the first release of sweeps wrote it: no `logged_as` column.
_OLD_SWEEPS = """
CREATE TABLE sweeps (
    sweep_id TEXT PRIMARY KEY, name TEXT, spec TEXT, dataset TEXT, dataset_hash TEXT,
    status TEXT, elapsed_s REAL DEFAULT 0, parent_run_id TEXT, created REAL, updated REAL
);
"""


def test_an_older_journal_gains_new_columns_and_keeps_its_sweeps(tmp_path: Path) -> None:
    path = tmp_path / "sweeps.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(_OLD_SWEEPS)
        db.execute("INSERT INTO sweeps (sweep_id, name, status) VALUES ('s1', 'old', 'done')")
    journal = Journal(path)
    try:
        journal.set_logged("s1", "run-1", "tracker|10|done")
        row = journal.sweep("s1")
    finally:
        journal.close()
    assert row is not None
    assert (row["name"], row["parent_run_id"], row["logged_as"]) == ("old", "run-1", "tracker|10|done")
