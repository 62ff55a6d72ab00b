"""`score`: score rows a user already has (offline traffic logs, another system's outputs)
without running any pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd


@dataclass
class ScoredRows:
    frame: pd.DataFrame  # the input rows plus one column per metric
    summary: pd.DataFrame  # metric, estimate, ci_low, ci_high, n, failures, not_applicable, judge
    report: Any


def score_file(
    rows: str | Path,
    *,
    metrics: list[str] | None = None,
    judge: str | None = None,
    config: str | Path = "experiments/quickstart.yaml",
    out: str | Path | None = None,
    progress: bool = False,
) -> ScoredRows:
    """Score a JSONL/CSV/parquet file of `question`, `answer`, `contexts` (+ optional `reference`,
    `reference_contexts`, `evidence`, `retrieved`, `answerable`). `config` supplies the embedder
    and the model endpoints a `judge` may name. With `out`, writes rows + scores atomically."""
    from workbench.evaluate import build_judge, scores_table, scoring_concurrency
    from workbench.evaluation.metrics import DEFAULT_METRICS, build_metrics
    from workbench.evaluation.rows import load_rows, write_scored
    from workbench.evaluation.scoring import score
    from workbench.evaluation.stats import aggregate_with_ci
    from workbench.session import Workbench

    items = load_rows(rows)
    wb = Workbench.from_yaml(config, cache=None)
    judge_obj = build_judge(wb, judge)
    chosen = build_metrics(metrics or list(DEFAULT_METRICS), embedder=wb.embedder, judge=judge_obj)
    if judge_obj is not None:
        wb.loop.run(judge_obj.check())
    report = wb.loop.run(score(items, chosen, concurrency=scoring_concurrency(wb, judge), progress=progress))
    inputs = pd.DataFrame([item.model_dump(mode="json") for item in items])
    scores = report.frame.drop(columns=["question_id"], errors="ignore").reset_index(drop=True)
    frame = pd.concat([inputs.reset_index(drop=True), scores], axis=1)
    summary = scores_table(report, aggregate_with_ci(frame, [m.name for m in chosen]))
    if out is not None:
        write_scored(frame, out)
    return ScoredRows(frame, summary, report)
