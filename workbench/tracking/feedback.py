"""Human feedback on answers: thumbs up/down with a comment, kept in DuckDB and on the MLflow trace.

`record_feedback` writes one row to the `feedback` table (created if missing, one
transaction) and, when the answer's trace id is known and a tracker is given, logs the
feedback as an MLflow assessment (name `user_feedback`, value True/False, source HUMAN)
on that trace. MLflow is written first: if it fails nothing is stored; if DuckDB then fails
the assessment is removed again, so the two never disagree.

`feedback_to_dataset` turns the labels into a new dataset version folder.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from workbench.core.errors import InvalidFeedback, TrackingError
from workbench.tracking._duckdb import duckdb_transaction
from workbench.tracking._feedback_dataset import DatasetExists, feedback_to_dataset

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

__all__ = [
    "DatasetExists",
    "FeedbackRecord",
    "InvalidFeedback",
    "feedback_to_dataset",
    "load_feedback",
    "record_feedback",
]

Thumbs = Literal["up", "down"]
THUMBS: tuple[str, ...] = ("up", "down")
FEEDBACK_TABLE = "feedback"
ASSESSMENT_NAME = "user_feedback"
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


class FeedbackSink(Protocol):
    """Anything with `log_feedback` (an `MlflowTracker`, an `InMemoryTracker`)."""

    def log_feedback(
        self, *, trace_id: str, name: str, value: bool, rationale: str, user: str, metadata: dict[str, str]
    ) -> str: ...


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


def record_feedback(
    *,
    duckdb_path: str | Path,
    run_id: str,
    question_id: str,
    thumbs: Thumbs,
    comment: str = "",
    trace_id: str | None = None,
    tracker: FeedbackSink | MlflowClient | None = None,
    user: str = "user",
) -> FeedbackRecord:
    """Store one thumbs up/down; with a `trace_id` and a `tracker`, also log it on the MLflow trace."""
    if thumbs not in THUMBS:
        raise InvalidFeedback(f"thumbs must be 'up' or 'down', got {thumbs!r}")
    if not run_id or not question_id:
        raise InvalidFeedback("feedback needs a run id and a question id")
    record = FeedbackRecord(
        feedback_id=uuid.uuid4().hex,
        created_at=datetime.now(UTC).replace(tzinfo=None),
        run_id=run_id,
        question_id=question_id,
        thumbs=thumbs,
        comment=comment or "",
        trace_id=trace_id or None,
        user=user or "user",
        assessment_id=None,
    )
    if record.trace_id and tracker is not None:
        assessment_id = _log_to_mlflow(tracker, record)
        record = FeedbackRecord(**(record.as_row() | {"assessment_id": assessment_id}))
    try:
        _insert(Path(duckdb_path), record)
    except TrackingError:
        if record.assessment_id:
            _undo_mlflow(tracker, record)
        raise
    return record


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


def write_assessment(
    client: MlflowClient, *, trace_id: str, name: str, value: bool, rationale: str, user: str, metadata: dict[str, str]
) -> str:
    """Log a HUMAN feedback assessment on a trace through `client`'s store; returns its id."""
    from mlflow.entities import AssessmentSource, Feedback

    from workbench.tracking._mlflow import tracing_client

    feedback = Feedback(
        name=name,
        value=value,
        rationale=rationale or None,
        source=AssessmentSource(source_type="HUMAN", source_id=user),
        metadata=metadata,
    )
    logged = tracing_client(client).log_assessment(trace_id, feedback)
    return str(logged.assessment_id)


# -- internals ------------------------------------------------------------------------------


def _metadata(record: FeedbackRecord) -> dict[str, str]:
    return {"feedback_id": record.feedback_id, "run_id": record.run_id, "question_id": record.question_id}


def _log_to_mlflow(tracker: FeedbackSink | MlflowClient, record: FeedbackRecord) -> str:
    assert record.trace_id is not None
    kwargs: dict[str, Any] = dict(
        trace_id=record.trace_id,
        name=ASSESSMENT_NAME,
        value=record.thumbs == "up",
        rationale=record.comment,
        user=record.user,
        metadata=_metadata(record),
    )
    method = getattr(tracker, "log_feedback", None)
    if callable(method):
        return str(method(**kwargs))
    try:
        return write_assessment(tracker, **kwargs)  # type: ignore[arg-type]
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise TrackingError(
            f"MLflow: could not log feedback on trace {record.trace_id}: {type(exc).__name__}: {first}"
        ) from exc


def _undo_mlflow(tracker: Any, record: FeedbackRecord) -> None:
    try:
        delete = getattr(tracker, "delete_feedback", None)
        if callable(delete):
            delete(trace_id=record.trace_id, assessment_id=record.assessment_id)
        else:
            from workbench.tracking._mlflow import tracing_client

            tracing_client(tracker).delete_assessment(record.trace_id, record.assessment_id)
    except Exception:  # the DuckDB error is the one to report
        log.warning("feedback %s is on trace %s but not in DuckDB", record.feedback_id, record.trace_id, exc_info=True)


def _insert(path: Path, record: FeedbackRecord) -> None:
    row = record.as_row()
    columns = ", ".join(f'"{c}"' for c in COLUMNS)
    with duckdb_transaction(path, "store feedback") as con:
        con.execute(_DDL)
        con.execute(
            f"INSERT INTO {FEEDBACK_TABLE} ({columns}) VALUES ({', '.join('?' for _ in COLUMNS)})",
            [row[c] for c in COLUMNS],
        )
