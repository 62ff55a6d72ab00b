"""Log a finished parameter sweep to MLflow: one parent run, one child run and LoggedModel per variant.

    ids = log_sweep(tracker, SweepLog(...))   # tracker: MlflowTracker, InMemoryTracker, ...

In the experiment named after the sweep, MLflow then holds:

- a parent run (run name = sweep name, tags `workbench.sweep_id`, `workbench.kind=sweep`,
  `workbench.winner`, `workbench.recommended`, `workbench.status`, the note as
  `mlflow.note.content`) with the leaderboard and comparisons tables, a Pareto plot PNG and
  the sweep spec YAML;
- per variant, a child run (`mlflow.parentRunId`) with the varied axes and `config_hash` as
  params (redacted as `log_run` does), the metrics with their CIs, the per-question table and
  the config YAML; and a LoggedModel (name = variant id, same params, `source_run_id` = the
  child run, listed in the run's outputs) to which the run's metrics are attributed;
- one trace per question row of each variant, linked to the child run and to the LoggedModel,
  its scores attached as CODE assessments (NaN scores skipped);
- the dataset as an MLflow dataset input on every run.

Logging again for the same `sweep_id` (a resumed sweep) *reuses* the parent run, each
variant's child run and LoggedModel, so run and model ids stay stable: tags, metrics and
artifacts are overwritten, the traces of a reused child are deleted and written again. A
child whose params changed is replaced (old run and model deleted), and children of variants
no longer in the sweep are deleted.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from workbench.core.redact import redact_url
from workbench.tracking import _limits
from workbench.tracking._artifacts import CONFIG_ARTIFACT, TABLE_ARTIFACT
from workbench.tracking._frame import json_safe_table

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities import Run

log = logging.getLogger(__name__)

__all__ = ["SweepLog", "SweepRunIds", "SweepSink", "VariantLog", "log_sweep", "write_sweep"]

SWEEP_ID_TAG = "workbench.sweep_id"
KIND_TAG = "workbench.kind"
VARIANT_TAG = "workbench.variant"
MODEL_ID_TAG = "workbench.model_id"
PARENT_TAG = "mlflow.parentRunId"
NOTE_TAG = "mlflow.note.content"
LOGGED_ARTIFACTS_TAG = "mlflow.loggedArtifacts"  # what makes the UI render a JSON file as a table
LEADERBOARD_ARTIFACT = "leaderboard.json"
COMPARISONS_ARTIFACT = "comparisons.json"
PARETO_ARTIFACT = "pareto.png"
SPEC_ARTIFACT = "sweep.yaml"
MODEL_TYPE = "rag-pipeline"
DATASET_CONTEXT = "evaluation"


@dataclass
class VariantLog:
    """One pipeline variant of a sweep, as run on the sweep's dataset."""

    variant: str
    params: dict[str, Any]
    config_yaml: str
    config_hash: str
    metrics: dict[str, float]
    table: pd.DataFrame
    metric_names: list[str] = field(default_factory=list)


@dataclass
class SweepLog:
    """Everything a finished (or stopped) sweep leaves to be logged."""

    sweep_id: str
    name: str
    spec_yaml: str
    dataset_name: str
    dataset_digest: str
    dataset_frame: pd.DataFrame
    variants: list[VariantLog]
    leaderboard: pd.DataFrame
    comparisons: pd.DataFrame
    winner: str | None
    recommended: str | None
    pareto: list[str]
    pareto_axes: tuple[str, str]
    note: str
    status: str


@dataclass(frozen=True)
class SweepRunIds:
    """The ids a sweep was logged under: parent run, child run and LoggedModel per variant id."""

    parent_run_id: str
    child_run_ids: dict[str, str]
    model_ids: dict[str, str]


class SweepSink(Protocol):
    """Anything with `log_sweep` (an `MlflowTracker`, an `InMemoryTracker`)."""

    def log_sweep(self, sweep: SweepLog) -> SweepRunIds: ...


def log_sweep(tracker: SweepSink, sweep: SweepLog) -> SweepRunIds:
    """Log `sweep` through `tracker`; idempotent per `sweep.sweep_id` (see the module docstring).

    Raises `TrackingError` if the backend fails.
    """
    return tracker.log_sweep(sweep)


def write_sweep(client: MlflowClient, sweep: SweepLog, experiment_id: str) -> SweepRunIds:
    """Write `sweep` into `experiment_id` through `client`'s store. MLflow errors propagate."""
    from workbench.tracking._mlflow import tracing_client

    started = time.perf_counter()
    tracing = tracing_client(client)
    dataset = _dataset_input(sweep)
    parent = _find_parent(client, experiment_id, sweep.sweep_id)
    if parent is None:
        parent_id = client.create_run(experiment_id, run_name=sweep.name, tags=_parent_tags(sweep)).info.run_id
        children: dict[str, Run] = {}
    else:
        parent_id = parent.info.run_id
        children = _find_children(client, experiment_id, parent_id)
    child_ids: dict[str, str] = {}
    model_ids: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="workbench-sweep-") as tmp:
        for variant in sweep.variants:
            child_id, model_id = _log_variant(
                client, tracing, sweep, variant, experiment_id, parent_id, children.pop(variant.variant, None), dataset
            )
            child_ids[variant.variant], model_ids[variant.variant] = child_id, model_id
        for stale in children.values():
            _delete_child(client, stale)
        _log_parent(client, sweep, parent_id, parent, dataset, Path(tmp))
    log.info(
        "logged sweep %s (%d variants) as run %s in %.1fs",
        sweep.sweep_id,
        len(sweep.variants),
        parent_id,
        time.perf_counter() - started,
    )
    return SweepRunIds(parent_run_id=parent_id, child_run_ids=child_ids, model_ids=model_ids)


# -- runs ---------------------------------------------------------------------------------------


def _find_parent(client: MlflowClient, experiment_id: str, sweep_id: str) -> Run | None:
    # Matched in Python: a sweep id is free text and needs no quoting in a filter string.
    runs = _search(client, experiment_id, f"tags.`{KIND_TAG}` = 'sweep'")
    mine = sorted((r for r in runs if r.data.tags.get(SWEEP_ID_TAG) == sweep_id), key=lambda r: r.info.start_time)
    return mine[0] if mine else None


def _find_children(client: MlflowClient, experiment_id: str, parent_id: str) -> dict[str, Run]:
    runs = _search(client, experiment_id, f"tags.`{PARENT_TAG}` = '{parent_id}'")
    children: dict[str, Run] = {}
    for run in sorted(runs, key=lambda r: r.info.start_time):
        variant = run.data.tags.get(VARIANT_TAG)
        if variant is None or variant in children:
            _delete_child(client, run)  # a duplicate left by an interrupted log
        else:
            children[variant] = run
    return children


def _search(client: MlflowClient, experiment_id: str, filter_string: str) -> list[Run]:
    found: list[Run] = []
    token = None
    while True:
        page = client.search_runs([experiment_id], filter_string=filter_string, max_results=1000, page_token=token)
        found.extend(page)
        token = page.token
        if not token:
            return found


def _delete_child(client: MlflowClient, run: Run) -> None:
    model_id = run.data.tags.get(MODEL_ID_TAG)
    if model_id:
        try:
            client.delete_logged_model(model_id)
        except Exception:  # already gone; the run is what must not be listed twice
            log.debug("could not delete logged model %s", model_id, exc_info=True)
    client.delete_run(run.info.run_id)


def _parent_tags(sweep: SweepLog) -> dict[str, str]:
    tags = {
        SWEEP_ID_TAG: sweep.sweep_id,
        KIND_TAG: "sweep",
        "workbench.status": sweep.status,
        "workbench.dataset": sweep.dataset_name,
        "workbench.dataset_digest": sweep.dataset_digest,
        "workbench.pareto": ", ".join(sweep.pareto),
        NOTE_TAG: sweep.note,
    }
    for key, value in (("workbench.winner", sweep.winner), ("workbench.recommended", sweep.recommended)):
        if value:
            tags[key] = value
    return _limits.tag_items(tags)


def _set_tags(client: MlflowClient, run_id: str, tags: dict[str, str]) -> None:
    from mlflow.entities import RunTag

    items = [RunTag(k, v) for k, v in tags.items()]
    for chunk in _limits.batches(items, _limits.TAGS_PER_BATCH):
        client.log_batch(run_id, tags=chunk)


def _log_parent(
    client: MlflowClient, sweep: SweepLog, run_id: str, existing: Run | None, dataset: Any, tmp: Path
) -> None:
    from workbench.tracking._sweep_plot import pareto_png

    tags = _parent_tags(sweep)
    if existing is not None:
        _set_tags(client, run_id, tags)
        for key in ("workbench.winner", "workbench.recommended"):
            if key not in tags and key in existing.data.tags:
                client.delete_tag(run_id, key)
    _add_dataset(client, run_id, existing, dataset)
    _log_table(client, run_id, sweep.leaderboard, LEADERBOARD_ARTIFACT, tmp)
    _log_table(client, run_id, sweep.comparisons, COMPARISONS_ARTIFACT, tmp)
    png = tmp / PARETO_ARTIFACT
    png.write_bytes(
        pareto_png(
            sweep.leaderboard,
            sweep.pareto_axes,
            pareto=sweep.pareto,
            winner=sweep.winner,
            recommended=sweep.recommended,
            title=f"{sweep.name}: {sweep.pareto_axes[0]} vs {sweep.pareto_axes[1]}",
        )
    )
    client.log_artifact(run_id, str(png))
    client.log_text(run_id, redact_url(sweep.spec_yaml), SPEC_ARTIFACT)
    client.set_terminated(run_id, "FINISHED")


def _log_variant(
    client: MlflowClient,
    tracing: Any,
    sweep: SweepLog,
    variant: VariantLog,
    experiment_id: str,
    parent_id: str,
    existing: Run | None,
    dataset: Any,
) -> tuple[str, str]:
    from mlflow.entities import LoggedModelOutput, Metric, Param

    from workbench.tracking._sweep_traces import delete_run_traces, variant_traces, write_variant_traces

    params = _limits.param_items({**variant.params, "config_hash": variant.config_hash})
    if existing is not None and any(existing.data.params.get(k, v) != v for k, v in params.items()):
        log.info("variant %s changed its params since it was logged; replacing its run", variant.variant)
        _delete_child(client, existing)
        existing = None
    tags = _limits.tag_items(
        {
            PARENT_TAG: parent_id,
            SWEEP_ID_TAG: sweep.sweep_id,
            KIND_TAG: "variant",
            VARIANT_TAG: variant.variant,
            "workbench.config_hash": variant.config_hash,
            "workbench.dataset": sweep.dataset_name,
            "workbench.dataset_digest": sweep.dataset_digest,
        }
    )
    if existing is None:
        run_id: str = client.create_run(experiment_id, run_name=variant.variant, tags=tags).info.run_id
    else:
        run_id = existing.info.run_id
        _set_tags(client, run_id, tags)
        delete_run_traces(client, experiment_id, run_id)
    model_id = _model_for(client, existing)
    if model_id is None:
        model = client.create_logged_model(
            experiment_id,
            name=variant.variant,
            source_run_id=run_id,
            params=params,
            tags=_limits.tag_items({SWEEP_ID_TAG: sweep.sweep_id, "workbench.config_hash": variant.config_hash}),
            model_type=MODEL_TYPE,
        )
        model_id = model.model_id
        client.finalize_logged_model(model_id, "READY")
        client.log_outputs(run_id, [LoggedModelOutput(model_id, 0)])
        client.set_tag(run_id, MODEL_ID_TAG, model_id)

    now = int(time.time() * 1000)
    new_params = [Param(k, v) for k, v in params.items() if existing is None or k not in existing.data.params]
    for chunk in _limits.batches(new_params, _limits.PARAMS_PER_BATCH):
        client.log_batch(run_id, params=chunk)
    metrics = [
        Metric(k, v, now, 0, model_id=model_id, dataset_name=sweep.dataset_name, dataset_digest=sweep.dataset_digest)
        for k, v in _limits.metric_items(variant.metrics).items()
    ]
    for mchunk in _limits.batches(metrics, _limits.METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=mchunk)
    _add_dataset(client, run_id, existing, dataset)
    client.log_text(run_id, redact_url(variant.config_yaml), CONFIG_ARTIFACT)
    with tempfile.TemporaryDirectory(prefix="workbench-variant-") as tmp:
        _log_table(client, run_id, variant.table, TABLE_ARTIFACT, Path(tmp))
    infos, spans, _ = variant_traces(
        variant.table,
        variant.metric_names,
        experiment_id=experiment_id,
        run_id=run_id,
        model_id=model_id,
        tags={SWEEP_ID_TAG: sweep.sweep_id, VARIANT_TAG: variant.variant},
    )
    write_variant_traces(tracing, experiment_id, infos, spans)
    client.set_terminated(run_id, "FINISHED")
    return run_id, model_id


def _model_for(client: MlflowClient, existing: Run | None) -> str | None:
    """The LoggedModel of a reused child run, if it is still there."""
    model_id = existing.data.tags.get(MODEL_ID_TAG) if existing is not None else None
    if not model_id:
        return None
    try:
        client.get_logged_model(model_id)
    except Exception:  # deleted by hand in the UI: make a new one
        return None
    return model_id


# -- inputs and artifacts -----------------------------------------------------------------------


def _dataset_input(sweep: SweepLog) -> Any:
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.entities import DatasetInput, InputTag

    dataset = from_pandas(sweep.dataset_frame, name=sweep.dataset_name, digest=sweep.dataset_digest)
    return DatasetInput(dataset._to_mlflow_entity(), [InputTag("mlflow.data.context", DATASET_CONTEXT)])


def _add_dataset(client: MlflowClient, run_id: str, existing: Run | None, dataset: Any) -> None:
    if existing is not None and existing.inputs is not None:
        logged = {(d.dataset.name, d.dataset.digest) for d in existing.inputs.dataset_inputs}
        if (dataset.dataset.name, dataset.dataset.digest) in logged:
            return
    client.log_inputs(run_id, datasets=[dataset])


def _log_table(client: MlflowClient, run_id: str, frame: pd.DataFrame, artifact: str, tmp: Path) -> None:
    """Write a table as `MlflowClient.log_table` does, but replacing (log_table appends to a file
    that already exists, which would double a re-logged table)."""
    path = tmp / artifact
    json_safe_table(frame).to_json(path, orient="split", index=False, date_format="iso")
    client.log_artifact(run_id, str(path))
    current = client.get_run(run_id).data.tags.get(LOGGED_ARTIFACTS_TAG)
    try:
        listed = json.loads(current) if current else []
    except json.JSONDecodeError:
        listed = []
    entry = {"path": artifact, "type": "table"}
    if entry not in listed:
        client.set_tag(run_id, LOGGED_ARTIFACTS_TAG, json.dumps([*listed, entry]))
