"""The `Tracker` seam: whatever records a finished evaluation run.

`MlflowTracker` writes to MLflow; `workbench.testing.InMemoryTracker` keeps runs in a list.
The caller owns the tracker object and passes it where needed; there is no global one.

A run names what it was made on and with: a `DatasetRef` (an MLflow dataset input, what the
"Evaluation runs" view lists) and a `ModelRef` (the pipeline config as an MLflow LoggedModel,
one per config hash, what the "Agent versions" view lists).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import pandas as pd

    from workbench.core.schema import PromptTemplate
    from workbench.core.state import RequestState
    from workbench.tracking.sweep_log import SweepLog, SweepRunIds

MODEL_ID_TAG = "workbench.model_id"
CONFIG_HASH_TAG = "workbench.config_hash"


def config_hash(resolved: Mapping[str, Any]) -> str:
    """The hash of a resolved config (`config.model_dump(mode="json")`): sha256 of its
    canonical JSON, 16 hex digits. The same value a sweep variant's `config_hash` has."""
    text = json.dumps(resolved, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class DatasetRef:
    """The dataset a run was made on, logged as an MLflow dataset input.

    `digest` is the dataset's `content_hash`; `frame` is a small preview (question_id,
    question, gold_answer) holding the questions as the pipeline saw them (after masking).
    `context` is the input's role: "evaluation" for an eval, "run" for a plain run.
    """

    name: str
    digest: str
    frame: pd.DataFrame = field(repr=False)
    context: str = "evaluation"


@dataclass(frozen=True)
class ModelRef:
    """The pipeline config a run used, logged as an MLflow LoggedModel keyed by `config_hash`:
    created by the first run of that config, reused (and linked) by every later one."""

    config_name: str
    config_hash: str
    params: Mapping[str, Any] = field(repr=False)

    @property
    def name(self) -> str:
        return f"{self.config_name}-{self.config_hash[:8]}"


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
        dataset: DatasetRef | None = None,
        model: ModelRef | None = None,
    ) -> str:
        """Log params (nested dicts are flattened), metrics, tags, the per-question table,
        the config YAML as `config.yaml` and extra artifact files. Returns the run id.

        With `dataset`, the run gets it as a dataset input; with `model`, the run is linked to
        that config's LoggedModel (found or created) and tagged `workbench.model_id`.

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
        scores: Sequence[Mapping[str, float]] | None = None,
    ) -> list[str]:
        """One trace per request (a span per stage), linked to `run_id` and to the run's
        LoggedModel; `scores` (one mapping per state) become CODE assessments on the traces.
        Returns the trace ids."""
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
