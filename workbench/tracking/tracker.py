"""The `Tracker` seam: whatever records a finished evaluation run.

`MlflowTracker` writes to MLflow; `workbench.testing.InMemoryTracker` keeps runs in a list.
The caller owns the tracker object and passes it where needed; there is no global one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import pandas as pd


@runtime_checkable
class Tracker(Protocol):
    """Records one evaluation run and returns its id."""

    def log_run(
        self,
        *,
        experiment: str,
        run_name: str,
        config_yaml: str,
        params: dict[str, Any],
        metrics: dict[str, float],
        tags: dict[str, str],
        table: pd.DataFrame | None,
        artifacts: Sequence[Path],
    ) -> str:
        """Log params (nested dicts are flattened), metrics, tags, the per-question table,
        the config YAML as `config.yaml` and extra artifact files. Returns the run id.

        Raises `TrackingError` if the backend fails.
        """
        ...
