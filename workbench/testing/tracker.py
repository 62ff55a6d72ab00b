"""`InMemoryTracker`: a `Tracker` that keeps runs in a list, for tests and dry runs."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.errors import TrackingError
from workbench.tracking._limits import metric_items, param_items, tag_items

if TYPE_CHECKING:
    import pandas as pd

    from workbench.core.schema import PromptTemplate
    from workbench.core.state import RequestState
    from workbench.tracking.sweep_log import SweepLog, SweepRunIds
    from workbench.tracking.traces import SpanRecord
    from workbench.tracking.tracker import DatasetRef, ModelRef


@dataclass(frozen=True)
class TrackedRun:
    """One logged run, as an MLflow store would hold it (params flattened to text)."""

    run_id: str
    experiment: str
    run_name: str
    config_yaml: str
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    table: pd.DataFrame | None
    artifacts: list[Path] = field(default_factory=list)
    dataset: DatasetRef | None = None
    model: ModelRef | None = None


@dataclass(frozen=True)
class TrackedTrace:
    trace_id: str
    experiment: str | None
    run_id: str | None
    question_id: str
    request_id: str
    spans: list[SpanRecord]
    scores: dict[str, float] = field(default_factory=dict)  # what MLflow holds as CODE assessments
    model_id: str | None = None


@dataclass(frozen=True)
class TrackedFeedback:
    feedback_id: str
    trace_id: str
    name: str
    value: bool
    rationale: str
    user: str
    metadata: dict[str, str]


class InMemoryTracker:
    """Records every `log_run` in `self.runs`. Pass `fail=...` to make logging raise `TrackingError`.

    A run logged with a `ModelRef` is tagged `workbench.model_id` = `m-mem-<config hash>`, so
    runs of one config share a model id, as they share a LoggedModel in MLflow."""

    def __init__(self, *, fail: str | None = None) -> None:
        self.runs: list[TrackedRun] = []
        self.traces: list[TrackedTrace] = []
        self.prompts: dict[str, list[Any]] = {}  # registered name -> content of versions 1, 2, ...
        self.feedback: list[TrackedFeedback] = []
        self.sweeps: dict[str, SweepLog] = {}  # sweep id -> the last SweepLog logged for it
        self.fail = fail
        self._ids = itertools.count(1)

    @property
    def last(self) -> TrackedRun:
        if not self.runs:
            raise LookupError("no run has been logged")
        return self.runs[-1]

    def log_run(
        self,
        *,
        experiment: str,
        run_name: str,
        config_yaml: str,
        params: dict[str, Any],
        metrics: dict[str, float],
        tags: dict[str, str] | None = None,
        table: pd.DataFrame | None = None,
        artifacts: Sequence[Path] = (),
        dataset: DatasetRef | None = None,
        model: ModelRef | None = None,
    ) -> str:
        from workbench.tracking.tracker import MODEL_ID_TAG

        if self.fail is not None:
            raise TrackingError(self.fail)
        missing = [str(p) for p in artifacts if not Path(p).is_file()]
        if missing:
            raise TrackingError(f"artifact file not found: {', '.join(missing)}")
        run_id = f"mem-{next(self._ids):04d}"
        tags = dict(tags or {})
        if model is not None:
            tags[MODEL_ID_TAG] = f"m-mem-{model.config_hash}"
        self.runs.append(
            TrackedRun(
                run_id=run_id,
                experiment=experiment,
                run_name=run_name,
                config_yaml=config_yaml,
                params=param_items(params),
                metrics=metric_items(metrics),
                tags=tag_items(tags),
                table=None if table is None else table.copy(),
                artifacts=[Path(p) for p in artifacts],
                dataset=dataset,
                model=model,
            )
        )
        return run_id

    def load_table(self, run_id: str) -> pd.DataFrame:
        """The table logged with `run_id`, as `MlflowTracker.load_table` gives it."""
        for run in self.runs:
            if run.run_id == run_id and run.table is not None:
                return run.table.copy()
        raise TrackingError(f"run {run_id} has no table")

    def run_tags(self, run_id: str) -> dict[str, str]:
        for run in self.runs:
            if run.run_id == run_id:
                return dict(run.tags)
        raise TrackingError(f"run {run_id} not found")

    def runs_in(self, experiment: str) -> list[TrackedRun]:
        return [r for r in self.runs if r.experiment == experiment]

    def _run(self, run_id: str) -> TrackedRun:
        for run in self.runs:
            if run.run_id == run_id:
                return run
        raise TrackingError(f"run {run_id} not found")

    def log_traces(
        self,
        *,
        experiment: str | None,
        run_id: str | None,
        states: Sequence[RequestState],
        question_ids: Sequence[str],
        scores: Sequence[Mapping[str, float]] | None = None,
    ) -> list[str]:
        from workbench.tracking.traces import MODEL_ID_TAG, build_spans, score_value

        if self.fail is not None:
            raise TrackingError(self.fail)
        if len(states) != len(question_ids):
            raise TrackingError(f"got {len(states)} request states but {len(question_ids)} question ids")
        if scores is not None and len(scores) != len(states):
            raise TrackingError(f"got {len(states)} request states but {len(scores)} score rows")
        model_id = None
        if run_id is not None:
            run = self._run(run_id)
            experiment = experiment or run.experiment
            model_id = run.tags.get(MODEL_ID_TAG)
        rows: Sequence[Mapping[str, float]] = scores if scores is not None else [{}] * len(states)
        ids = []
        for state, question_id, row in zip(states, question_ids, rows, strict=True):
            kept = {name: v for name, raw in row.items() if (v := score_value(raw)) is not None}
            trace = TrackedTrace(
                f"tr-mem-{next(self._ids):04d}",
                experiment,
                run_id,
                question_id,
                state.request_id,
                build_spans(state),
                scores=kept,
                model_id=model_id,
            )
            self.traces.append(trace)
            ids.append(trace.trace_id)
        return ids

    def register_prompts(
        self, prompts: Mapping[str, PromptTemplate], *, run_id: str | None, prefix: str | None = None
    ) -> dict[str, str]:
        from workbench.tracking.prompts import DEFAULT_PREFIX, prompt_content, prompt_name, prompt_uri, run_prompt_tags

        if self.fail is not None:
            raise TrackingError(self.fail)
        run = self._run(run_id) if run_id else None
        prefix = prefix or (run.tags.get("config_name") if run else None) or DEFAULT_PREFIX
        uris = {}
        for key, template in prompts.items():
            name, content = prompt_name(prefix, key), prompt_content(template)
            versions = self.prompts.setdefault(name, [])
            matching = [i + 1 for i, c in enumerate(versions) if c == content]
            if not matching:
                versions.append(content)
            uris[key] = prompt_uri(name, matching[-1] if matching else len(versions))
        if run is not None:
            run.tags.update(tag_items(run_prompt_tags(uris)))
        return uris

    def log_feedback(
        self, *, trace_id: str, name: str, value: bool, rationale: str, user: str, metadata: dict[str, str]
    ) -> str:
        if self.fail is not None:
            raise TrackingError(self.fail)
        if not any(t.trace_id == trace_id for t in self.traces):
            raise TrackingError(f"trace {trace_id} not found")
        feedback_id = f"a-mem-{next(self._ids):04d}"
        self.feedback.append(TrackedFeedback(feedback_id, trace_id, name, value, rationale, user, dict(metadata)))
        return feedback_id

    def delete_feedback(self, *, trace_id: str, assessment_id: str) -> None:
        self.feedback = [f for f in self.feedback if f.feedback_id != assessment_id]

    def log_sweep(self, sweep: SweepLog) -> SweepRunIds:
        """Keep `sweep` in `self.sweeps` (a re-log replaces it); ids derive from the sweep and variant ids."""
        from workbench.tracking.sweep_log import SweepRunIds

        if self.fail is not None:
            raise TrackingError(self.fail)
        self.sweeps[sweep.sweep_id] = sweep
        return SweepRunIds(
            parent_run_id=f"mem-sweep-{sweep.sweep_id}",
            child_run_ids={v.variant: f"mem-{sweep.sweep_id}-{v.variant}" for v in sweep.variants},
            model_ids={v.variant: f"m-mem-{sweep.sweep_id}-{v.variant}" for v in sweep.variants},
        )
