"""`run_sweep`: expand a spec, answer every (variant, question, repeat) into the journal, pick a
winner that holds up, and log the sweep to MLflow.

Strategies: `grid`/`random` answer every chosen variant on every search question; `halving`
answers a small rung of questions, prunes the variants significantly worse than the best by a
paired test (Holm-adjusted), and gives the survivors more questions. With `confirm.holdout`,
the front (Pareto and statistically tied variants) is re-run on held-out questions, and the
winner is picked there.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from workbench.core.cache import SqliteStageCache
from workbench.core.errors import ConfigError
from workbench.core.protocols import ChatModel, Embedder
from workbench.sweeps.executors import Executor, LocalExecutor, executor_registry
from workbench.sweeps.resources import SharedResources
from workbench.sweeps.result import SweepPlan, SweepResult
from workbench.sweeps.sweep import Sweep

log = logging.getLogger(__name__)


def _rows_path(root: Path, name: str, sweep: str) -> Path:
    return (root / "results" / "sweeps" / name / f"{sweep}.parquet").resolve()


def plan_sweep(spec: str | Path, dataset: str | Path, *, root: str | Path = ".", limit: int | None = None) -> SweepPlan:
    """What `run_sweep` would do, and an upper bound on what it would cost; runs nothing."""
    sweep = Sweep(spec, dataset, root=root, limit=limit)
    try:
        return sweep.plan()
    finally:
        sweep.journal.close()


def run_sweep(
    spec: str | Path,
    dataset: str | Path,
    *,
    root: str | Path = ".",
    limit: int | None = None,
    executor: str = "local",
    tracker: Any = "auto",
    retry_errors: bool = False,
    progress: bool = False,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    embedder: Embedder | None = None,
    models: Mapping[str, ChatModel] | None = None,
    cache: Any = "auto",
) -> SweepResult:
    """Run (or resume) a sweep and return its rows, leaderboard and winner as DataFrames.

    `tracker`: "auto" logs to MLflow (MLFLOW_TRACKING_URI, else `<root>/mlflow.db`), None logs
    nothing, or a tracker object. `embedder`, `models` and `cache` replace the real ones, as in
    `Workbench`. `on_row` sees every row as it is recorded (a notebook's live leaderboard).
    """
    sweep = Sweep(spec, dataset, root=root, limit=limit)
    stage_cache = SqliteStageCache(sweep.root / sweep.base.store.cache) if cache == "auto" else cache
    resources = SharedResources(sweep.root, cache=stage_cache, embedder=embedder, models=models)
    try:
        from workbench.sweeps.runner import SweepRunner
        from workbench.tracking.results import write_parquet_atomic

        if executor not in executor_registry().names():
            raise ConfigError(f"unknown executor {executor!r}; valid: {', '.join(executor_registry().names())}")
        chosen = _executor(executor, sweep, resources)
        runner = SweepRunner(sweep, resources, chosen, progress=progress, on_row=on_row)
        try:
            result = runner.run(retry_errors=retry_errors)
        finally:
            chosen.close()  # a Ray executor's actors (and a local cluster it started) end here
        result.rows_path = _rows_path(sweep.root, sweep.spec.name, sweep.id)
        write_parquet_atomic(result.rows, result.rows_path)
        result.parent_run_id = _log(sweep, result, tracker)
        return result
    finally:
        resources.close()
        sweep.journal.close()


def _executor(name: str, sweep: Sweep, resources: SharedResources) -> Executor:
    from workbench.evaluation.metrics import build_metrics

    if name == "local":
        embedder = resources.embedder(sweep.base)
        metrics = build_metrics(sweep.spec.scored_metrics, embedder=embedder, k=sweep.base.evaluation.k)
        return LocalExecutor(resources, metrics)
    cls = executor_registry().resolve(name)
    return cls()  # type: ignore[no-any-return]


def _tracker(tracker: Any, root: Path) -> Any:
    if tracker != "auto":
        return tracker
    from workbench.tracking import MlflowTracker

    return MlflowTracker(os.environ.get("MLFLOW_TRACKING_URI") or root / "mlflow.db")


def _log(sweep: Sweep, result: SweepResult, tracker: Any) -> str | None:
    chosen = _tracker(tracker, sweep.root)
    if chosen is None or result.rows.empty:
        return None
    # A resumed sweep with nothing new is already in that store as it is: logging it again
    # would rewrite every run and trace for nothing (most of a repeat's time).
    logged_as = f"{chosen!r}|{len(result.rows)}|{result.status}|{result.winner}|{result.recommended}"
    before = sweep.journal.sweep(sweep.id) or {}
    if before.get("logged_as") == logged_as and before.get("parent_run_id"):
        return str(before["parent_run_id"])
    from workbench.sweeps.record import sweep_log

    run_id = sweep_log(chosen, sweep, result)
    if run_id:
        sweep.journal.set_logged(sweep.id, run_id, logged_as)
    return run_id
