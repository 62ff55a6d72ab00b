"""`score`: score rows a user already has (offline traffic logs, another system's outputs)
without running any pipeline."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.core.errors import EvaluationError

SCORE_SUFFIX = "_score"  # a score whose name an input column already has, as in `eval`'s merge


@dataclass
class ScoredRows:
    frame: pd.DataFrame  # every input column, the canonical fields scoring used, one column per metric
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
    `reference_contexts`, `evidence`, `retrieved`, `answerable`), or a DuckDB request log (a
    served bundle's `var/requests/` folder or one of its files). `config` supplies the embedder
    and the model endpoints a `judge` may name. With `out`, writes rows + scores atomically.

    The output keeps every input column as it was in the file (ids, labels, anything else), in
    the file's order, then the canonical fields scoring read under a name the file did not use
    (`question` for `user_input`, `question_id` for `id`), then the scores. A score whose name is
    already an input column is written as `<metric>_score`; the input column is kept.
    """
    from workbench.evaluate import scores_table, scoring_concurrency
    from workbench.evaluation.metrics import DEFAULT_METRICS, build_metrics
    from workbench.evaluation.rows import load_rows, write_scored
    from workbench.evaluation.scoring import score
    from workbench.evaluation.stats import aggregate_with_ci
    from workbench.session import Workbench

    items = load_rows(rows)
    raw = _input_frame(Path(rows))
    if len(raw) != len(items):
        raise EvaluationError(f"{rows}: read {len(raw)} rows but scored {len(items)}; cannot pair them")
    wb = Workbench.from_yaml(config, cache=None)
    judge_obj = wb.judge(judge)
    chosen = build_metrics(metrics or list(DEFAULT_METRICS), embedder=wb.embedder, judge=judge_obj)
    if judge_obj is not None:
        wb.loop.run(judge_obj.check())
    report = wb.loop.run(score(items, chosen, concurrency=scoring_concurrency(wb.config, judge), progress=progress))
    scores = report.frame.drop(columns=["question_id"], errors="ignore").reset_index(drop=True)
    # The summary reads the scores alone: an input column named `error` must not drop rows.
    summary = scores_table(report, aggregate_with_ci(scores, [m.name for m in chosen]))
    canonical = pd.DataFrame([item.model_dump(mode="json") for item in items])
    frame = pd.concat(
        [
            raw,
            canonical[[c for c in canonical.columns if c not in raw.columns]],
            scores.rename(columns={c: f"{c}{SCORE_SUFFIX}" for c in scores.columns if c in raw.columns}),
        ],
        axis=1,
    )
    if out is not None:
        write_scored(frame, out)
    return ScoredRows(frame, summary, report)


def _input_frame(path: Path) -> pd.DataFrame:
    """The file's rows with every column and value as written (CSV cells stay text, so ids
    like `007` keep their zeros). `load_rows` has already checked the file."""
    suffix = path.suffix.lower()
    if path.is_dir() or suffix == ".duckdb":
        from workbench.evaluation.rows import read_duckdb_rows

        return read_duckdb_rows(path)
    if suffix == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    if suffix == ".parquet":
        return pd.read_parquet(path).reset_index(drop=True)
    with path.open(encoding="utf-8") as fh:
        records: list[dict[str, Any]] = [json.loads(line) for line in fh if line.strip()]
    return pd.DataFrame.from_records(records)
