"""`MlflowTracker`: log a finished evaluation run to an MLflow tracking store.

One `MlflowClient` per tracker, bound to its own tracking URI; the process-wide
`mlflow.set_tracking_uri` is never touched, so two trackers on two stores can coexist.

The default store is `sqlite:///<cwd>/mlflow.db` made absolute when the tracker is built,
so a notebook and the CLI can share one store by passing the same path. For a SQLite store
the run artifacts go next to the database, in `mlruns/` (never in whatever the cwd is).

Nothing this tracker writes or says carries a credential: params, tags and the config YAML are
redacted (`workbench.core.redact`), and so is the tracking URI (`http://user:pass@host`) in its
repr, its log lines and its errors.

A run logged with a `DatasetRef` gets it as an MLflow dataset input; with a `ModelRef`, it is
linked to its config's LoggedModel (one per experiment and config hash: the first run of a
config creates it and lists it in its outputs, later runs list it in their inputs), its
metrics are attributed to that model and dataset, and it is tagged `workbench.model_id`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shlex
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.errors import MissingDependency, TrackingError
from workbench.core.offline import offline_environment
from workbench.core.redact import redact_text, redact_url
from workbench.tracking import _limits
from workbench.tracking._artifacts import CONFIG_ARTIFACT, TABLE_ARTIFACT
from workbench.tracking._frame import json_safe_table
from workbench.tracking.tracker import CONFIG_HASH_TAG, MODEL_ID_TAG

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

    from workbench.core.schema import PromptTemplate
    from workbench.core.state import RequestState
    from workbench.tracking.sweep_log import SweepLog, SweepRunIds
    from workbench.tracking.tracker import DatasetRef, ModelRef

log = logging.getLogger(__name__)

DEFAULT_DB = "mlflow.db"
MODEL_TYPE = "rag-pipeline"
_SWEEP_ID_TAG = "workbench.sweep_id"  # a sweep's models are its own: replaced when it is re-logged


def resolve_tracking_uri(tracking_uri: str | Path | None = None) -> str:
    """Turn None, a path or a relative `sqlite:///` URI into an absolute URI; pass others through.

    A directory means `<dir>/mlflow.db`. With no URI, `MLFLOW_TRACKING_URI` is honoured, as
    MLflow's own tools do, before falling back to `./mlflow.db`.
    """
    if tracking_uri is None:
        tracking_uri = os.environ.get("MLFLOW_TRACKING_URI") or None
    if tracking_uri is None:
        return _sqlite_uri(Path.cwd() / DEFAULT_DB)
    text = str(tracking_uri)
    if text.startswith("sqlite:///"):
        return _sqlite_uri(Path(text.removeprefix("sqlite:///")))
    if "://" in text or text.startswith("databricks"):
        return text
    path = Path(text).expanduser()
    if path.is_dir():
        path = path / DEFAULT_DB
    return _sqlite_uri(path)


def _sqlite_uri(path: Path) -> str:
    return "sqlite:///" + str(path.expanduser().resolve())


class MlflowTracker:
    """A `Tracker` writing to MLflow (a SQLite file, or an `http://` tracking server).

    `MlflowTracker()` uses `./mlflow.db`; `MlflowTracker("../mlflow.db")` or
    `MlflowTracker("http://127.0.0.1:5000")` point elsewhere. Building one is cheap:
    mlflow is imported and the store opened on the first `log_run`.
    """

    def __init__(self, tracking_uri: str | Path | None = None, *, artifact_root: str | Path | None = None) -> None:
        self.tracking_uri = resolve_tracking_uri(tracking_uri)
        if artifact_root is not None:
            self.artifact_root: Path | None = Path(artifact_root).expanduser().resolve()
        elif self.db_path is not None:
            self.artifact_root = self.db_path.parent / "mlruns"
        else:
            self.artifact_root = None  # the server decides
        self._client: MlflowClient | None = None

    def __repr__(self) -> str:
        return f"MlflowTracker({self.shown_uri!r})"

    @property
    def shown_uri(self) -> str:
        """The tracking URI as it may be shown or logged: credentials redacted."""
        return redact_url(self.tracking_uri)

    @property
    def db_path(self) -> Path | None:
        """The SQLite file behind the store, or None for a server."""
        if self.tracking_uri.startswith("sqlite:///"):
            return Path(self.tracking_uri.removeprefix("sqlite:///"))
        return None

    def ui_command(self, port: int | None = None) -> str:
        """The shell command that opens the MLflow UI on this store."""
        if self.db_path is None:
            raise TrackingError(f"{self.shown_uri} is a tracking server; open it in a browser instead")
        cmd = ["mlflow", "ui", "--backend-store-uri", self.tracking_uri]
        if port is not None:
            cmd += ["--port", str(port)]
        return shlex.join(cmd)

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            try:
                from mlflow import MlflowClient
            except ImportError as exc:
                raise MissingDependency("mlflow", "tracking") from exc
            if self.db_path is not None:
                self.db_path.parent.mkdir(parents=True, exist_ok=True)
            offline_environment()
            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

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
        """Log one run; returns its MLflow run id. Raises `TrackingError` with one clear line.

        `dataset` becomes the run's dataset input; `model` links the run to its config's
        LoggedModel (see the module docstring)."""
        missing = [str(p) for p in artifacts if not Path(p).is_file()]
        if missing:
            raise TrackingError(f"artifact file not found: {', '.join(missing)}")
        client = self.client
        experiment_id = self._call("get or create experiment", lambda: self._experiment_id(experiment))
        run = self._call(
            "create run",
            lambda: client.create_run(experiment_id, run_name=run_name, tags=_limits.tag_items(tags or {})),
        )
        run_id: str = run.info.run_id
        try:
            model_id = self._link(experiment_id, run_id, dataset, model)
            self._log_values(run_id, params, metrics, model_id=model_id, dataset=dataset)
            client.log_text(run_id, redact_url(config_yaml), CONFIG_ARTIFACT)
            if table is not None:
                client.log_table(run_id, data=json_safe_table(table), artifact_file=TABLE_ARTIFACT)
            for path in artifacts:
                client.log_artifact(run_id, str(path))
        except Exception as exc:
            self._fail(run_id)
            raise self._error(f"log run '{run_name}'", exc) from exc
        self._call("finish run", lambda: client.set_terminated(run_id, "FINISHED"))
        log.info("logged run %s (%s) to %s", run_name, run_id, self.shown_uri)
        return run_id

    def load_table(self, run_id: str) -> pd.DataFrame:
        """The per-question table of a run, as logged (nested cells are JSON text)."""
        import pandas as pd

        def load() -> pd.DataFrame:
            import json

            local = self.client.download_artifacts(run_id, TABLE_ARTIFACT)
            data = json.loads(Path(local).read_text())
            return pd.DataFrame(data["data"], columns=data["columns"])

        return self._call(f"load table of run {run_id}", load)

    def log_traces(
        self,
        *,
        experiment: str | None,
        run_id: str | None,
        states: Sequence[RequestState],
        question_ids: Sequence[str],
        scores: Sequence[Mapping[str, float]] | None = None,
    ) -> list[str]:
        """One trace per request state, linked to `run_id` (and its LoggedModel), `scores` as
        CODE assessments; see `workbench.tracking.traces`."""
        from workbench.tracking.traces import write_traces

        return self._call(
            "log traces",
            lambda: write_traces(
                self.client, experiment, run_id, states, question_ids, scores=scores, create=self._experiment_id
            ),
        )

    def register_prompts(
        self, prompts: Mapping[str, PromptTemplate], *, run_id: str | None, prefix: str | None = None
    ) -> dict[str, str]:
        """Register prompt templates (idempotent) and pin them on the run; see `workbench.tracking.prompts`."""
        from workbench.tracking.prompts import write_prompts

        return self._call("register prompts", lambda: write_prompts(self.client, prompts, run_id, prefix=prefix))

    def log_feedback(
        self, *, trace_id: str, name: str, value: bool, rationale: str, user: str, metadata: dict[str, str]
    ) -> str:
        """Attach human feedback to a trace as an MLflow assessment; returns the assessment id."""
        from workbench.tracking.feedback import write_assessment

        return self._call(
            f"log feedback on trace {trace_id}",
            lambda: write_assessment(
                self.client,
                trace_id=trace_id,
                name=name,
                value=value,
                rationale=rationale,
                user=user,
                metadata=metadata,
            ),
        )

    def log_sweep(self, sweep: SweepLog) -> SweepRunIds:
        """Log a sweep as a parent run with a child run and LoggedModel per variant, in the
        experiment `sweep.name`; idempotent per sweep id. See `workbench.tracking.sweep_log`."""
        from workbench.tracking.sweep_log import write_sweep

        experiment_id = self._call("get or create experiment", lambda: self._experiment_id(sweep.name))
        ids: SweepRunIds = self._call(
            f"log sweep '{sweep.name}'", lambda: write_sweep(self.client, sweep, experiment_id)
        )
        return ids

    def run_tags(self, run_id: str) -> dict[str, str]:
        """The tags of a run (dataset, dataset_hash, code_version, ...)."""
        return self._call(f"read the tags of run {run_id}", lambda: dict(self.client.get_run(run_id).data.tags))

    def find_trace(self, run_id: str, question_id: str) -> str | None:
        """The trace logged for `question_id` in `run_id`, if any."""

        def find() -> str | None:
            experiment_id = self.client.get_run(run_id).info.experiment_id
            traces = self.client.search_traces(
                locations=[experiment_id], run_id=run_id, filter_string=f"tags.question_id = '{question_id}'"
            )
            return traces[0].info.trace_id if traces else None

        return self._call(f"find the trace of {question_id} in run {run_id}", find)

    def delete_feedback(self, *, trace_id: str, assessment_id: str) -> None:
        """Remove an assessment logged by `log_feedback` (used to undo a half-recorded feedback)."""
        from workbench.tracking._mlflow import tracing_client

        self._call("delete feedback", lambda: tracing_client(self.client).delete_assessment(trace_id, assessment_id))

    # -- internals -------------------------------------------------------------------------

    def _experiment_id(self, name: str) -> str:
        client = self.client
        found = client.get_experiment_by_name(name)
        if found is not None:
            if found.lifecycle_stage == "deleted":
                raise TrackingError(
                    f"experiment '{name}' is deleted in {self.shown_uri}; restore it in the MLflow UI "
                    "or use another experiment name"
                )
            return str(found.experiment_id)
        location = None
        if self.artifact_root is not None:
            slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:60] or "experiment"
            digest = hashlib.sha1(name.encode()).hexdigest()[:8]
            location = (self.artifact_root / f"{slug}-{digest}").as_uri()
        try:
            return str(client.create_experiment(name, artifact_location=location))
        except Exception:
            # Another process may have created it between the lookup and here.
            found = client.get_experiment_by_name(name)
            if found is None:
                raise
            return str(found.experiment_id)

    def _link(self, experiment_id: str, run_id: str, dataset: DatasetRef | None, model: ModelRef | None) -> str | None:
        """Log the dataset input and link the run to its LoggedModel; returns the model id."""
        from mlflow.data.pandas_dataset import from_pandas
        from mlflow.entities import DatasetInput, InputTag, LoggedModelInput, LoggedModelOutput

        model_id, created = self._model_for(experiment_id, run_id, model) if model is not None else (None, False)
        inputs = []
        if dataset is not None:
            entity = from_pandas(dataset.frame, name=dataset.name, digest=dataset.digest)._to_mlflow_entity()
            inputs.append(DatasetInput(entity, [InputTag("mlflow.data.context", dataset.context)]))
        if model_id is not None and created:
            self.client.log_outputs(run_id, [LoggedModelOutput(model_id, 0)])
        if inputs or (model_id is not None and not created):
            models = [LoggedModelInput(model_id)] if model_id is not None and not created else None
            self.client.log_inputs(run_id, datasets=inputs or None, models=models)
        if model_id is not None:
            self.client.set_tag(run_id, MODEL_ID_TAG, model_id)
        return model_id

    def _model_for(self, experiment_id: str, run_id: str, model: ModelRef) -> tuple[str, bool]:
        """The id of `model`'s LoggedModel in the experiment, creating it (READY) if there is
        none yet; and whether it was created now."""
        client = self.client
        found = client.search_logged_models(
            [experiment_id], filter_string=f"tags.`{CONFIG_HASH_TAG}` = '{model.config_hash}'", max_results=100
        )
        # Matched in Python: a config name is free text; a sweep's models are not shared.
        mine = [m for m in found if m.name == model.name and _SWEEP_ID_TAG not in m.tags and m.status == "READY"]
        if mine:
            return min(mine, key=lambda m: m.creation_timestamp).model_id, False
        created = client.create_logged_model(
            experiment_id,
            name=model.name,
            source_run_id=run_id,
            params=_limits.param_items(dict(model.params)),
            tags=_limits.tag_items({CONFIG_HASH_TAG: model.config_hash, "config_name": model.config_name}),
            model_type=MODEL_TYPE,
        )
        client.finalize_logged_model(created.model_id, "READY")
        return str(created.model_id), True

    def _log_values(
        self,
        run_id: str,
        params: dict[str, Any],
        metrics: dict[str, float],
        *,
        model_id: str | None = None,
        dataset: DatasetRef | None = None,
    ) -> None:
        from mlflow.entities import Metric, Param

        now = int(time.time() * 1000)
        # Attributed to the model and dataset, the metrics show on the model's page per dataset.
        link: dict[str, Any] = {"model_id": model_id} if model_id else {}
        if model_id and dataset is not None:
            link |= {"dataset_name": dataset.name, "dataset_digest": dataset.digest}
        param_list = [Param(k, v) for k, v in _limits.param_items(params).items()]
        metric_list = [Metric(k, v, now, 0, **link) for k, v in _limits.metric_items(metrics).items()]
        for chunk in _limits.batches(param_list, _limits.PARAMS_PER_BATCH):
            self.client.log_batch(run_id, params=chunk)
        for mchunk in _limits.batches(metric_list, _limits.METRICS_PER_BATCH):
            self.client.log_batch(run_id, metrics=mchunk)

    def _fail(self, run_id: str) -> None:
        try:
            self.client.set_terminated(run_id, "FAILED")
        except Exception:  # the store is already failing; the original error is what matters
            log.debug("could not mark run %s as failed", run_id, exc_info=True)

    def _call(self, what: str, fn: Any) -> Any:
        try:
            return fn()
        except TrackingError:
            raise
        except Exception as exc:
            raise self._error(what, exc) from exc

    def _error(self, what: str, exc: Exception) -> TrackingError:
        first = redact_text((str(exc).strip().splitlines() or [""])[0][:300])
        return TrackingError(f"MLflow ({self.shown_uri}): could not {what}: {type(exc).__name__}: {first}")
