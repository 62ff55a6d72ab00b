"""The `feedback` table in DuckDB: its rows, one insert, and reading them back.

Both `feedback` (recording) and `_feedback_dataset` (turning labels into a dataset) build on
this module, and neither imports the other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.errors import TrackingError
from workbench.tracking._duckdb import duckdb_transaction

if TYPE_CHECKING:
    import pandas as pd

FEEDBACK_TABLE = "feedback"
COLUMNS = (
    "feedback_id",
    "created_at",
    "run_id",
    "question_id",
    "thumbs",
    "comment",
    "trace_id",
    "user",
    "assessment_id",
)
_DDL = f"""
CREATE TABLE IF NOT EXISTS {FEEDBACK_TABLE} (
    feedback_id VARCHAR PRIMARY KEY,
    created_at TIMESTAMP NOT NULL,
    run_id VARCHAR NOT NULL,
    question_id VARCHAR NOT NULL,
    thumbs VARCHAR NOT NULL,
    comment VARCHAR NOT NULL,
    trace_id VARCHAR,
    "user" VARCHAR NOT NULL,
    assessment_id VARCHAR
)
"""


@dataclass(frozen=True)
class FeedbackRecord:
    """One stored feedback row."""

    feedback_id: str
    created_at: datetime  # UTC, naive (as DuckDB's TIMESTAMP returns it)
    run_id: str
    question_id: str
    thumbs: str
    comment: str
    trace_id: str | None
    user: str
    assessment_id: str | None

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


def insert_feedback(path: Path, record: FeedbackRecord) -> None:
    """Append one row, creating the table if needed, in one transaction."""
    row = record.as_row()
    columns = ", ".join(f'"{c}"' for c in COLUMNS)
    with duckdb_transaction(path, "store feedback") as con:
        con.execute(_DDL)
        con.execute(
            f"INSERT INTO {FEEDBACK_TABLE} ({columns}) VALUES ({', '.join('?' for _ in COLUMNS)})",
            [row[c] for c in COLUMNS],
        )


def load_feedback(duckdb_path: str | Path, run_id: str | None = None) -> pd.DataFrame:
    """All feedback rows (or one run's), oldest first; empty with the right columns if there is none."""
    import duckdb
    import pandas as pd

    path = Path(duckdb_path)
    empty = pd.DataFrame({c: pd.Series(dtype="datetime64[us]" if c == "created_at" else object) for c in COLUMNS})
    if not path.is_file():
        return empty
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            tables = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
            if FEEDBACK_TABLE not in tables:
                return empty
            sql = f"SELECT * FROM {FEEDBACK_TABLE}"
            params: list[Any] = []
            if run_id is not None:
                sql += " WHERE run_id = ?"
                params.append(run_id)
            frame: pd.DataFrame = con.execute(sql + " ORDER BY created_at, feedback_id", params).df()
            return frame
    except duckdb.Error as exc:
        raise TrackingError(f"{path}: cannot read feedback ({exc})") from exc
