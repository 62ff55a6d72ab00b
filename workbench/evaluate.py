"""`eval`: run a pipeline over a dataset (reusing cached stages), score every question, attach
confidence intervals and judge reliability, and log one MLflow run with traces and prompts."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from workbench.core.errors import ConfigError
from workbench.evaluation import summarize

if TYPE_CHECKING:
    from workbench.evaluation.judged import Judge
    from workbench.session import Workbench

log = logging.getLogger(__name__)


@dataclass
class EvalResult:
    run_id: str | None
    frame: pd.DataFrame
    metrics: dict[str, float]
    scores: pd.DataFrame  # metric, estimate, ci_low, ci_high, n, failures, not_applicable, judge
    parquet_path: Path | None
    trace_ids: list[str] = field(default_factory=list)
    prompt_uris: dict[str, str] = field(default_factory=dict)


def build_judge(wb: Workbench, name: str | None, repeats: int | None = None) -> Judge | None:
    """The judge named by `--judge`: any model endpoint of the config."""
    if name is None:
        return None
    if name not in wb.config.models:
        valid = ", ".join(sorted(wb.config.models))
        raise ConfigError(f"unknown judge {name!r}; valid judges are the config's models: {valid}")
    from workbench.evaluation.judged import Judge

    # Reuse the pipeline's loaded model; keep judgments beside the store so they survive runs.
    return Judge.from_endpoint(
        name,
        wb.config.models[name],
        model=wb.pool.model(name),
        cache_path=wb.store_path.parent / "judge_cache.duckdb",
        embedder=wb.embedder,
        repeats=repeats or wb.config.evaluation.judge_repeats,
        max_parse_retries=wb.config.evaluation.judge_max_parse_retries,
    )


def scoring_concurrency(wb: Workbench, judge: str | None) -> int:
    """An in-process local judge answers one call at a time; parallel calls would only queue
    behind its lock and run into the judge's timeout."""
    if judge is not None and wb.config.models[judge].provider == "llama_cpp":
        return 1
    return 8


def scores_table(report: Any, cis: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for name, ci in cis.items():
        info = report.judge_info.get(name, {})
        judge = info.get("judge")
        rows.append(
            {
                "metric": name,
                "estimate": ci.estimate,
                "ci_low": ci.low,
                "ci_high": ci.high,
                "n": ci.n,
                "failures": report.failures.get(name, 0),
                "not_applicable": report.not_applicable.get(name, 0),
                "judge": f"{judge} (weak judge)" if judge and info.get("weak") else judge,
            }
        )
    return pd.DataFrame(rows)


def evaluate(
    wb: Workbench,
    dataset: str | Path,
    *,
    limit: int | None = None,
    metrics: list[str] | None = None,
    judge: str | None = None,
    judge_repeats: int | None = None,
    log_run: bool = True,
    progress: bool = False,
) -> EvalResult:
    from workbench.evaluation.metrics import DEFAULT_METRICS, build_metrics
    from workbench.evaluation.rows import rows_from_results
    from workbench.evaluation.scoring import score
    from workbench.evaluation.stats import aggregate_with_ci, ci_metrics
    from workbench.runner import execute, record

    # The command line wins; otherwise the config's `evaluation:` section says how to score.
    settings = wb.config.evaluation
    judge = judge or settings.judge
    judge_obj = build_judge(wb, judge, judge_repeats)
    wanted = metrics or settings.metrics or list(DEFAULT_METRICS)
    chosen = build_metrics(wanted, embedder=wb.embedder, judge=judge_obj, k=settings.k)
    if judge_obj is not None:
        wb.loop.run(judge_obj.check())
    execution = execute(wb, dataset, limit=limit, progress=progress)
    items = rows_from_results(execution.frame, execution.dataset.questions)
    concurrency = scoring_concurrency(wb, judge)
    report = wb.loop.run(score(items, chosen, concurrency=concurrency, progress=progress))
    frame = execution.frame.merge(report.frame, on="question_id", how="left", suffixes=("", "_score"))
    execution.frame = frame
    names = [m.name for m in chosen]
    cis = aggregate_with_ci(frame, names)
    run_metrics = summarize(frame) | ci_metrics(cis)
    run_metrics |= {f"{name}_failures": float(n) for name, n in report.failures.items()}
    tags: dict[str, str] = {}
    for name, info in report.judge_info.items():
        tags[f"judge.{name}"] = f"{info.get('judge')}|prompt={info.get('prompt_version')}|weak={info.get('weak')}"
    result = record(wb, execution, run_metrics, log=log_run, tags=tags, kind="eval")
    out = EvalResult(result.run_id, frame, run_metrics, scores_table(report, cis), result.parquet_path)
    if result.run_id:
        _attach_traces_and_prompts(wb, out, execution)
    return out


def _attach_traces_and_prompts(wb: Workbench, out: EvalResult, execution: Any) -> None:
    from workbench.tracking.prompts import register_prompts
    from workbench.tracking.traces import log_request_traces

    ids = execution.frame["question_id"].tolist()
    done = [(s, q) for s, q in zip(execution.states, ids, strict=True) if s is not None]
    out.trace_ids = log_request_traces(
        wb.tracker, wb.config.name, out.run_id, [s for s, _ in done], [q for _, q in done]
    )
    out.prompt_uris = register_prompts(wb.tracker, wb.config.prompts, out.run_id)
