"""Tracking: record evaluation runs (MLflow, or any `Tracker`) and their per-question results.

`MlflowTracker` imports mlflow only when it first logs, so this package imports without it.
"""

from workbench.tracking.mlflow_tracker import MlflowTracker, resolve_tracking_uri
from workbench.tracking.results import read_results, read_results_db, write_results
from workbench.tracking.tracker import Tracker

__all__ = [
    "MlflowTracker",
    "Tracker",
    "read_results",
    "read_results_db",
    "resolve_tracking_uri",
    "write_results",
]
