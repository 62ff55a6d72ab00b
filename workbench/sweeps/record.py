"""A finished sweep as MLflow runs: `tracking.sweep_log` does the logging; this gathers what it
logs from the sweep (configs, per-variant tables and figures, the leaderboard and winner)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from workbench.core.config import dump_yaml

if TYPE_CHECKING:
    from workbench.sweeps.result import SweepResult
    from workbench.sweeps.sweep import Sweep


def _figures(board: pd.DataFrame, variant: str) -> dict[str, float]:
    if board.empty or "variant" not in board:
        return {}
    found = board[board["variant"] == variant]
    if found.empty:
        return {}
    out: dict[str, float] = {}
    for key, value in found.iloc[0].items():
        if isinstance(value, bool | int | float | np.number | np.bool_) and not math.isnan(float(value)):
            out[str(key)] = float(value)
    return out


def sweep_log(tracker: Any, sweep: Sweep, result: SweepResult) -> str | None:
    """Log `result` (idempotently per sweep id) and return the parent run's id."""
    from workbench.tracking.sweep_log import SweepLog, VariantLog, log_sweep

    rows = result.rows
    board = result.leaderboard if not result.leaderboard.empty else result.search_leaderboard
    variants = []
    for v in sweep.variants:
        table = rows[rows["variant"] == v.id].reset_index(drop=True)
        if table.empty:
            continue
        # Figures from the deciding leaderboard where the variant is on it, else from its search.
        figures = _figures(result.search_leaderboard, v.id) | _figures(board, v.id)
        variants.append(
            VariantLog(
                variant=v.id,
                params=dict(v.params),
                config_yaml=dump_yaml(v.config),
                config_hash=v.config_hash,
                metrics=figures,
                table=table,
                metric_names=[m for m in sweep.spec.scored_metrics if m in table.columns],
            )
        )
    first = rows.drop_duplicates("question_id")
    dataset_frame = first[[c for c in ("question_id", "question", "gold_answer") if c in first]].reset_index(drop=True)
    objective = sweep.spec.objective.metric
    cost_axis = sweep.spec.pareto[0].metric if sweep.spec.pareto else "cost_per_1k_questions"
    ids = log_sweep(
        tracker,
        SweepLog(
            sweep_id=sweep.id,
            name=sweep.spec.name,
            spec_yaml=sweep.spec_yaml,
            dataset_name=sweep.dataset.name,
            dataset_digest=sweep.dataset.content_hash,
            dataset_frame=dataset_frame,
            variants=variants,
            leaderboard=board,
            comparisons=result.comparisons,
            winner=result.winner,
            recommended=result.recommended,
            pareto=result.pareto,
            pareto_axes=(objective, cost_axis),
            note=result.note,
            status=result.status,
        ),
    )
    return ids.parent_run_id
