"""Find what an export starts from, in MLflow: the evaluated run behind a SOURCE.

A SOURCE is a config YAML (run over `--dataset` first, logging a run), a sweep id (its winner's
child run: the parent run tagged `workbench.sweep_id` names the winner in `workbench.winner`),
or an MLflow run id (a `run`/`eval` run, a sweep variant's child run, or a sweep's parent run).

MLflow is the record to read, not the sweep journal: only the logged runs hold a winner, its
config artifact, metrics with intervals and results table together. The journal, when it is
there, is a cross-check: the winner's config hash must be the one it recorded.
"""

from __future__ import annotations

import re
import sqlite3
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from workbench.core.config import validate_config
from workbench.core.errors import BundleError, ConfigError
from workbench.core.protocols import ChatModel, Embedder
from workbench.core.schema import PipelineConfig

if TYPE_CHECKING:
    import pandas as pd

SWEEP_ID_TAG = "workbench.sweep_id"
KIND_TAG = "workbench.kind"
VARIANT_TAG = "workbench.variant"
PARENT_TAG = "mlflow.parentRunId"
_SAFE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")


@dataclass
class SourceRun:
    """The evaluated run an export is made from, read back from MLflow."""

    run_id: str
    experiment_id: str
    artifact_uri: str
    config: PipelineConfig
    tags: dict[str, str]
    metrics: dict[str, float]
    table: pd.DataFrame
    sweep_id: str | None = None
    variant: str | None = None
    prompts: dict[str, str] = field(default_factory=dict)  # prompt name -> prompts:/name/version

    @property
    def dataset_name(self) -> str | None:
        return self.tags.get("dataset") or self.tags.get("workbench.dataset")

    @property
    def dataset_hash(self) -> str | None:
        return self.tags.get("dataset_hash") or self.tags.get("workbench.dataset_digest")

    @property
    def index_fingerprint(self) -> str | None:
        return self.tags.get("index_fingerprint")

    @property
    def config_hash(self) -> str | None:
        return self.tags.get("workbench.config_hash")

    @property
    def model_id(self) -> str | None:
        return self.tags.get("workbench.model_id")


def mlflow_client(tracker: Any) -> Any:
    """The MlflowClient of `tracker`; export reads runs from MLflow and nothing else."""
    client = getattr(tracker, "client", None)
    if client is None:
        raise BundleError(f"export reads the evaluated run from MLflow; {tracker!r} is not an MLflow tracker")
    return client


def _store_exists(tracker: Any) -> bool:
    db = getattr(tracker, "db_path", None)
    return db is None or Path(db).is_file()


def is_config_file(source: str, root: Path) -> Path | None:
    for candidate in (Path(source), root / source):
        if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
            return candidate
    if source.endswith((".yaml", ".yml")):
        raise ConfigError(f"{source}: config file not found")
    return None


def run_config_source(
    path: Path,
    dataset: str | Path | None,
    *,
    root: Path,
    tracker: Any,
    embedder: Embedder | None,
    models: Mapping[str, ChatModel] | None,
    limit: int | None,
) -> str:
    """Run the config over `dataset` (logging a run) and return the run id."""
    from workbench.session import Workbench

    if dataset is None:
        raise ConfigError(f"exporting the config {path} runs it first: pass --dataset NAME_OR_PATH")
    wb = Workbench.from_yaml(path, root=root, tracker=tracker, embedder=embedder, models=dict(models or {}))
    try:
        result = wb.run(dataset, limit=limit)
    finally:
        wb.close()
    assert result.run_id is not None  # logged: the tracker is set
    return result.run_id


def find_source(source: str, tracker: Any, root: Path) -> SourceRun:
    """The evaluated run behind a sweep id or an MLflow run id; BundleError if neither."""
    where = getattr(tracker, "shown_uri", repr(tracker))
    unknown = BundleError(f"unknown source {source!r}: not a config file, a sweep id or a run id in {where}")
    if _SAFE_ID.match(source) and journal_has_sweep(source, root):
        unknown = BundleError(
            f"sweep {source} is in the journal but not logged to MLflow at {where}, so it has no recorded "
            "winner: run the sweep again with logging on (it resumes from the journal), or pass --tracking-uri"
        )
    if not _SAFE_ID.match(source) or not _store_exists(tracker):
        raise unknown
    client = mlflow_client(tracker)
    parent = _sweep_parent(client, source)
    if parent is not None:
        return _sweep_winner(client, tracker, parent)
    try:
        run = client.get_run(source)
    except Exception as exc:  # MLflow says "not found" in several exception types across versions
        raise unknown from exc
    if run.data.tags.get(KIND_TAG) == "sweep":
        return _sweep_winner(client, tracker, run)
    return read_run(client, tracker, run)


def read_run(client: Any, tracker: Any, run: Any, *, sweep_id: str | None = None) -> SourceRun:
    from workbench.tracking._artifacts import CONFIG_ARTIFACT

    run_id = run.info.run_id
    tags = dict(run.data.tags)
    with tempfile.TemporaryDirectory(prefix="workbench-export-") as tmp:
        try:
            local = client.download_artifacts(run_id, CONFIG_ARTIFACT, dst_path=tmp)
            text = Path(local).read_text()
        except Exception as exc:
            raise BundleError(f"run {run_id} has no {CONFIG_ARTIFACT} artifact; it is not a workbench run") from exc
    try:
        config = validate_config(PipelineConfig, yaml.safe_load(text), f"run {run_id} {CONFIG_ARTIFACT}")
    except (ConfigError, yaml.YAMLError) as exc:
        raise BundleError(str(exc).splitlines()[0]) from exc
    _check_config_hash(config, tags.get("workbench.config_hash"), run_id)
    prompts = {k.removeprefix("prompt."): v for k, v in tags.items() if k.startswith("prompt.")}
    return SourceRun(
        run_id=run_id,
        experiment_id=run.info.experiment_id,
        artifact_uri=run.info.artifact_uri,
        config=config,
        tags=tags,
        metrics=dict(run.data.metrics),
        table=tracker.load_table(run_id),
        sweep_id=sweep_id or tags.get(SWEEP_ID_TAG),
        variant=tags.get(VARIANT_TAG),
        prompts=prompts,
    )


def _check_config_hash(config: PipelineConfig, logged: str | None, run_id: str) -> None:
    from workbench.tracking.tracker import config_hash

    if logged and config_hash(config.model_dump(mode="json")) != logged:
        raise BundleError(
            f"run {run_id}: its config.yaml does not hash to the evaluated config's hash {logged} "
            "(edited artifact, or credentials redacted from a URL)"
        )


def _all_experiments(client: Any) -> list[str]:
    ids: list[str] = []
    token = None
    while True:
        page = client.search_experiments(max_results=1000, page_token=token)
        ids.extend(e.experiment_id for e in page)
        token = page.token
        if not token:
            return ids


def _search(client: Any, experiments: list[str], filter_string: str) -> list[Any]:
    found: list[Any] = []
    token = None
    while experiments:
        page = client.search_runs(experiments, filter_string=filter_string, max_results=1000, page_token=token)
        found.extend(page)
        token = page.token
        if not token:
            break
    return found


def _sweep_parent(client: Any, sweep_id: str) -> Any | None:
    runs = _search(client, _all_experiments(client), f"tags.`{SWEEP_ID_TAG}` = '{sweep_id}'")
    parents = sorted((r for r in runs if r.data.tags.get(KIND_TAG) == "sweep"), key=lambda r: r.info.start_time)
    return parents[0] if parents else None


def _sweep_winner(client: Any, tracker: Any, parent: Any) -> SourceRun:
    tags = parent.data.tags
    sweep_id = tags.get(SWEEP_ID_TAG, parent.info.run_id)
    winner = tags.get("workbench.winner")
    if not winner:
        status = tags.get("workbench.status", "unknown")
        raise BundleError(f"sweep {sweep_id} has no winner (status: {status}); nothing to export")
    children = _search(client, [parent.info.experiment_id], f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'")
    mine = [r for r in children if r.data.tags.get(VARIANT_TAG) == winner]
    if not mine:
        raise BundleError(f"sweep {sweep_id}: the winner {winner} has no child run in MLflow")
    found = read_run(client, tracker, mine[0], sweep_id=sweep_id)
    found.tags.setdefault("workbench.sweep_status", tags.get("workbench.status", ""))
    return found


def check_journal(found: SourceRun, root: Path) -> None:
    """With the sweep journal at hand, the winner's config hash must be the one it recorded."""
    from workbench.sweeps.sweep import JOURNAL_FILE

    if found.sweep_id is None or found.variant is None:
        return
    path = (root / found.config.store.cache).parent / JOURNAL_FILE
    if not path.is_file():
        return
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        row = db.execute(
            "SELECT config_hash FROM variants WHERE sweep_id = ? AND variant = ?", (found.sweep_id, found.variant)
        ).fetchone()
    if row is not None and found.config_hash and row[0] != found.config_hash:
        raise BundleError(
            f"sweep {found.sweep_id}: MLflow's winner {found.variant} has config hash {found.config_hash}, "
            f"the journal {path} recorded {row[0]}"
        )


def journal_has_sweep(sweep_id: str, root: Path, config_cache: str = ".workbench/stage_cache.sqlite") -> bool:
    from workbench.sweeps.sweep import JOURNAL_FILE

    path = (root / config_cache).parent / JOURNAL_FILE
    if not path.is_file():
        return False
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            return db.execute("SELECT 1 FROM sweeps WHERE sweep_id = ?", (sweep_id,)).fetchone() is not None
    except sqlite3.DatabaseError:
        return False
