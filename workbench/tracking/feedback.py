"""Human feedback on answers: thumbs up/down with a comment, kept in DuckDB and on the MLflow trace.

`record_feedback` writes one row to the `feedback` table (created if missing, one
transaction) and, when the answer's trace id is known and a tracker is given, logs the
feedback as an MLflow assessment (name `user_feedback`, value True/False, source HUMAN)
on that trace. MLflow is written first: if it fails nothing is stored; if DuckDB then fails
the assessment is removed again, so the two never disagree.

A comment is free text and may quote personal data: pass `mask` (the session's PII masker)
and only the masked comment is ever stored, in DuckDB and in MLflow alike.

`feedback_to_dataset` (from `_feedback_dataset`) turns the labels into a new dataset version.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from workbench.core.errors import InvalidFeedback, TrackingError
from workbench.core.redact import redact_text
from workbench.tracking._feedback_dataset import DatasetExists, feedback_to_dataset
from workbench.tracking._feedback_store import FeedbackRecord, insert_feedback, load_feedback

if TYPE_CHECKING:
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
ASSESSMENT_NAME = "user_feedback"


class FeedbackSink(Protocol):
    """Anything with `log_feedback` (an `MlflowTracker`, an `InMemoryTracker`)."""

    def log_feedback(
        self, *, trace_id: str, name: str, value: bool, rationale: str, user: str, metadata: dict[str, str]
    ) -> str: ...


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
    mask: Callable[[str], str] | None = None,
) -> FeedbackRecord:
    """Store one thumbs up/down; with a `trace_id` and a `tracker`, also log it on the MLflow trace.

    `mask` rewrites the comment before anything is written (say, a PII masker that turns
    `ana@example.com` into `<EMAIL_ADDRESS>`); the raw comment is never stored. If `mask`
    raises, nothing is stored.
    """
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
        comment=mask(comment) if mask is not None and comment else (comment or ""),
        trace_id=trace_id or None,
        user=user or "user",
        assessment_id=None,
    )
    if record.trace_id and tracker is not None:
        assessment_id = _log_to_mlflow(tracker, record)
        record = FeedbackRecord(**(record.as_row() | {"assessment_id": assessment_id}))
    try:
        insert_feedback(Path(duckdb_path), record)
    except TrackingError:
        if record.assessment_id:
            _undo_mlflow(tracker, record)
        raise
    return record


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
        first = redact_text((str(exc).strip().splitlines() or [""])[0][:300])
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
