"""`export_bundle`: turn an evaluated run (or a sweep's winner, or a config run now) into a
verified bundle folder, and register it in MLflow's model registry.

The bundle is built in a temporary folder next to `out`, opened from there like any bundle,
and its golden questions are replayed through its own pipeline with no stage cache. Only when
every one gets the evaluated retrieval and answer is it registered and renamed into place: a
refused export leaves nothing behind.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.bundle import _contents
from workbench.bundle._registry import RegisteredVersion, register_bundle
from workbench.bundle._source import SourceRun, check_journal, find_source, is_config_file, run_config_source
from workbench.bundle.bundle import (
    CONFIG_FILE,
    ENVIRONMENT_FILE,
    GOLDEN_FILE,
    INDEX_DIR,
    INDEX_MANIFEST,
    MODELS_FILE,
    PROMPTS_FILE,
    SCORECARD_FILE,
    Bundle,
)
from workbench.bundle.manifest import write_manifest
from workbench.core.config import dump_yaml
from workbench.core.dataset import Dataset, load_dataset
from workbench.core.errors import BundleError, ConfigError
from workbench.core.protocols import ChatModel, Embedder
from workbench.core.redact import redact_url

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportReport:
    """What `export_bundle` made: where, its digest, from which run, and how it was registered."""

    path: Path
    digest: str
    run_id: str
    sweep_id: str | None
    config_name: str
    golden: int
    slim: bool
    registered: RegisteredVersion | None

    def to_json(self) -> dict[str, Any]:
        reg = self.registered
        return {
            "path": str(self.path),
            "digest": self.digest,
            "run_id": self.run_id,
            "sweep_id": self.sweep_id,
            "config": self.config_name,
            "golden": self.golden,
            "slim": self.slim,
            "registered": None if reg is None else {"name": reg.name, "version": reg.version, "alias": reg.alias},
        }


def _tracker(tracker: Any, root: Path) -> Any:
    if tracker != "auto":
        return tracker
    from workbench.tracking import MlflowTracker

    return MlflowTracker(os.environ.get("MLFLOW_TRACKING_URI") or root / "mlflow.db")


def _check_out(out: Path, force: bool) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise BundleError(f"{out} exists and is not a folder")
    if any(out.iterdir()) and not force:
        raise BundleError(f"{out} exists and is not empty; pass --force to replace it")


def _dataset(found: SourceRun, dataset: str | Path | None, root: Path) -> Dataset:
    name = dataset if dataset is not None else found.dataset_name
    if name is None:
        raise BundleError(f"run {found.run_id} does not name its dataset; pass --dataset")
    ds = load_dataset(name, base=root)
    if found.dataset_hash and ds.content_hash != found.dataset_hash:
        raise BundleError(
            f"dataset {ds.name} has content hash {ds.content_hash}, run {found.run_id} evaluated "
            f"{found.dataset_hash}: the dataset changed since, or pass --dataset with the evaluated one"
        )
    return ds


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def _prompts(found: SourceRun) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, template in found.config.prompts.items():
        entry: dict[str, Any] = {"workbench_version": template.version, "uri": None}
        uri = found.prompts.get(name)
        if uri and uri.startswith("prompts:/"):
            registered, _, version = uri.removeprefix("prompts:/").rpartition("/")
            entry |= {"uri": uri, "registered_name": registered, "version": version}
        out[name] = entry
    return out


def _questions(found: SourceRun) -> int:
    # A sweep's table has a row per repeat; the scorecard counts questions.
    table = found.table
    return int(table["question_id"].nunique()) if "question_id" in table else len(table)


def _scorecard(found: SourceRun, ds: Dataset, index: dict[str, Any], tracking_uri: str | None) -> dict[str, Any]:
    return {
        "config": found.config.name,
        "config_hash": found.config_hash,
        "metrics": _contents.scorecard_metrics(found.metrics),
        "dataset": {"name": ds.name, "fingerprint": ds.content_hash, "questions": _questions(found)},
        "index_fingerprint": index["fingerprint"],
        "mlflow": {
            "run_id": found.run_id,
            "experiment_id": found.experiment_id,
            "model_id": found.model_id,
            "tracking_uri": redact_url(tracking_uri) if tracking_uri else None,
            "kind": found.tags.get("workbench.kind"),
        },
        "sweep": None if found.sweep_id is None else {"sweep_id": found.sweep_id, "variant": found.variant},
    }


def _write_contents(
    tmp: Path,
    found: SourceRun,
    ds: Dataset,
    *,
    root: Path,
    slim: bool,
    golden: int,
    embedder: Embedder | None,
    tracking_uri: str | None,
) -> None:
    from workbench.session import Workbench

    wb = Workbench(found.config, root=root, embedder=embedder, cache=None)
    try:
        index = wb.index_for(ds.documents)
        source = wb.catalog.ensure(ds.documents)
        if found.index_fingerprint and index.fingerprint != found.index_fingerprint:
            raise BundleError(
                f"the index of {ds.name} here has fingerprint {index.fingerprint}, run {found.run_id} "
                f"answered from {found.index_fingerprint}"
            )
        described = _contents.index_manifest(source, index.data, index.fingerprint, slim=slim)
        models = _contents.models_manifest(found.config, root)
    finally:
        wb.close()
    (tmp / CONFIG_FILE).write_text(dump_yaml(found.config))
    _write_json(tmp / PROMPTS_FILE, _prompts(found))
    _write_json(tmp / INDEX_MANIFEST, described)
    if not slim:
        shutil.copyfile(source, tmp / INDEX_DIR / source.name)
    _write_json(tmp / MODELS_FILE, models)
    _write_json(tmp / SCORECARD_FILE, _scorecard(found, ds, described, tracking_uri))
    questions = _contents.pick_golden(found.table, golden)
    (tmp / GOLDEN_FILE).write_text("".join(q.model_dump_json() + "\n" for q in questions))
    _write_json(tmp / ENVIRONMENT_FILE, _contents.environment())


def _replay(bundle: Bundle, embedder: Embedder | None, models: Mapping[str, ChatModel] | None) -> list[str]:
    wb = bundle.session(embedder=embedder, models=models)
    try:
        return wb.loop.run(bundle.arun_golden(wb.pipeline))
    finally:
        wb.close()


def _move_into_place(tmp: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.replaced")
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def export_bundle(
    source: str,
    out: str | Path,
    *,
    root: str | Path = ".",
    slim: bool = False,
    golden: int = 5,
    dataset: str | Path | None = None,
    alias: str | None = "candidate",
    tracker: Any = "auto",
    register: bool = True,
    force: bool = False,
    embedder: Embedder | None = None,
    models: Mapping[str, ChatModel] | None = None,
    limit: int | None = None,
) -> ExportReport:
    """Export the evaluated pipeline behind `source` (a sweep id, an MLflow run id, or a config
    YAML run now over `dataset`, its first `limit` questions) as a bundle folder `out`.

    `root` is the base of relative paths, as for `Workbench`. `tracker`: "auto" is MLflow at
    MLFLOW_TRACKING_URI, else `<root>/mlflow.db`. `embedder` and `models` replace the real ones
    (test fakes). Raises `BundleError` when the bundle would not be the evaluated pipeline (a
    changed dataset or index, a golden question answered differently), leaving nothing behind.
    """
    root = Path(root)
    out = root / Path(out).expanduser()
    if golden < 0:
        raise ConfigError(f"--golden must be 0 or more, not {golden}")
    _check_out(out, force)
    tracker = _tracker(tracker, root)
    config_file = is_config_file(source, root)
    if config_file is not None:
        source = run_config_source(
            config_file, dataset, root=root, tracker=tracker, embedder=embedder, models=models, limit=limit
        )
    found = find_source(source, tracker, root)
    check_journal(found, root)
    ds = _dataset(found, dataset, root)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.partial"
    (tmp / INDEX_DIR).mkdir(parents=True)
    try:
        uri = getattr(tracker, "tracking_uri", None)
        _write_contents(tmp, found, ds, root=root, slim=slim, golden=golden, embedder=embedder, tracking_uri=uri)
        extra = {"source": {"run_id": found.run_id, "sweep_id": found.sweep_id}, "config": found.config.name}
        write_manifest(tmp, **extra)
        bundle = Bundle.open(tmp, root=root)
        mismatches = _replay(bundle, embedder, models)
        if mismatches:
            more = f" (and {len(mismatches) - 1} more)" if len(mismatches) > 1 else ""
            raise BundleError(f"golden replay differs from the evaluated run: {mismatches[0]}{more}")
        registered = None
        if register:
            from workbench.bundle._source import mlflow_client

            registered = register_bundle(
                mlflow_client(tracker), found, digest=bundle.digest, path=out.resolve(), alias=alias
            )
        _move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("exported %s (%s) to %s", found.run_id, bundle.digest[:12], out)
    return ExportReport(
        path=out,
        digest=bundle.digest,
        run_id=found.run_id,
        sweep_id=found.sweep_id,
        config_name=found.config.name,
        golden=len(bundle.golden),
        slim=slim,
        registered=registered,
    )
