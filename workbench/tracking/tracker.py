"""The `Tracker` seam: whatever records a finished evaluation run.

`MlflowTracker` writes to MLflow; `workbench.testing.InMemoryTracker` keeps runs in a list.
The caller owns the tracker object and passes it where needed; there is no global one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import pandas as pd

    from workbench.core.schema import PromptTemplate
    from workbench.core.state import RequestState
    from workbench.tracking.sweep_log import SweepLog, SweepRunIds


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

    def load_table(self, run_id: str) -> pd.DataFrame:
        """The per-question table logged with a run."""
        ...

    def log_traces(
        self,
        *,
        experiment: str | None,
        run_id: str | None,
        states: Sequence[RequestState],
        question_ids: Sequence[str],
    ) -> list[str]:
        """One trace per request (a span per stage), linked to `run_id`; returns the trace ids."""
        ...

    def register_prompts(
        self, prompts: Mapping[str, PromptTemplate], *, run_id: str | None, prefix: str | None = None
    ) -> dict[str, str]:
        """Register prompt templates idempotently, pin them on the run; returns {name: prompt URI}."""
        ...

    def log_feedback(
        self, *, trace_id: str, name: str, value: bool, rationale: str, user: str, metadata: dict[str, str]
    ) -> str:
        """Attach human feedback to a trace; returns the feedback (assessment) id."""
        ...

    def delete_feedback(self, *, trace_id: str, assessment_id: str) -> None:
        """Remove feedback logged by `log_feedback`."""
        ...

    def log_sweep(self, sweep: SweepLog) -> SweepRunIds:
        """Log a finished sweep: a parent run, one child run and model per variant, traces with
        scores. Idempotent per `sweep.sweep_id`: logging again reuses or replaces, never duplicates."""
        ...
