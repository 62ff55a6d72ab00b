"""Tracking: record evaluation runs (MLflow, or any `Tracker`) and their per-question results.

`MlflowTracker` imports mlflow only when it first logs, so this package imports without it.
"""

from workbench.tracking.feedback import (
    DatasetExists,
    FeedbackRecord,
    InvalidFeedback,
    feedback_to_dataset,
    load_feedback,
    record_feedback,
)
from workbench.tracking.mlflow_tracker import MlflowTracker, resolve_tracking_uri
from workbench.tracking.prompts import register_prompts
from workbench.tracking.results import read_results, read_results_db, write_results
from workbench.tracking.traces import log_request_traces
from workbench.tracking.tracker import Tracker

__all__ = [
    "DatasetExists",
    "FeedbackRecord",
    "InvalidFeedback",
    "MlflowTracker",
    "Tracker",
    "feedback_to_dataset",
    "load_feedback",
    "log_request_traces",
    "read_results",
    "read_results_db",
    "record_feedback",
    "register_prompts",
    "resolve_tracking_uri",
    "write_results",
]
