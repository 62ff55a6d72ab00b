"""`eval`: run a pipeline over a dataset (reusing cached stages), score every question, attach
confidence intervals and judge reliability, and log one MLflow run with traces and prompts."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from workbench.core.dataset import Dataset
from workbench.core.errors import ConfigError
from workbench.core.schema import PipelineConfig
from workbench.evaluation import summarize
from workbench.runner import Execution, RunContext

if TYPE_CHECKING:
    from workbench.evaluation.judged import Judge

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


def build_judge(
    config: PipelineConfig,
    name: str | None,
    *,
    pool: Any,
    embedder: Any,
    cache_path: Path,
    repeats: int | None = None,
) -> Judge | None:
    """The judge named by `--judge`: any model endpoint of the config, called through `pool`."""
    if name is None:
        return None
    if name not in config.models:
        valid = ", ".join(sorted(config.models))
        raise ConfigError(f"unknown judge {name!r}; valid judges are the config's models: {valid}")
    from workbench.evaluation.judged import Judge

    # Reuse the pipeline's loaded model; keep judgments beside the stage cache so they survive runs.
    return Judge.from_endpoint(
        name,
        config.models[name],
        pool=pool,
        cache_path=cache_path,
        embedder=embedder,
        repeats=repeats or config.evaluation.judge_repeats,
        max_parse_retries=config.evaluation.judge_max_parse_retries,
    )


def scoring_concurrency(config: PipelineConfig, judge: str | None) -> int:
    """An in-process local judge answers one call at a time; parallel calls would only queue
    behind its lock and run into the judge's timeout."""
    if judge is not None and config.models[judge].provider == "llama_cpp":
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
    ctx: RunContext,
    dataset: Dataset,
    *,
    embedder: Any,
    judge: Judge | None = None,
    metrics: list[str] | None = None,
    progress: bool = False,
) -> EvalResult:
    """Run `dataset` through `ctx.pipeline`, score every question, and record one run.

    `judge` is built by the caller (`build_judge`) when an LLM-judged metric is wanted.
    """
    from workbench.evaluation.metrics import DEFAULT_METRICS, build_metrics
    from workbench.evaluation.rows import rows_from_results
    from workbench.evaluation.scoring import score
    from workbench.evaluation.stats import aggregate_with_ci, ci_metrics
    from workbench.runner import execute, record

    settings = ctx.config.evaluation
    wanted = metrics or settings.metrics or list(DEFAULT_METRICS)
    chosen = build_metrics(wanted, embedder=embedder, judge=judge, k=settings.k)
    if judge is not None:
        ctx.loop.run(judge.check())
    execution = execute(ctx, dataset, progress=progress)
    items = rows_from_results(execution.frame, execution.dataset.questions)
    concurrency = scoring_concurrency(ctx.config, judge.name if judge is not None else None)
    report = ctx.loop.run(score(items, chosen, concurrency=concurrency, progress=progress))
    frame = execution.frame.merge(report.frame, on="question_id", how="left", suffixes=("", "_score"))
    execution.frame = frame
    names = [m.name for m in chosen]
    cis = aggregate_with_ci(frame, names)
    run_metrics = summarize(frame) | ci_metrics(cis)
    run_metrics |= {f"{name}_failures": float(n) for name, n in report.failures.items()}
    tags: dict[str, str] = {}
    for name, info in report.judge_info.items():
        tags[f"judge.{name}"] = f"{info.get('judge')}|prompt={info.get('prompt_version')}|weak={info.get('weak')}"
    result = record(ctx, execution, run_metrics, tags=tags, kind="eval")
    out = EvalResult(result.run_id, frame, run_metrics, scores_table(report, cis), result.parquet_path)
    if result.run_id and ctx.tracker is not None:
        _attach_traces_and_prompts(ctx, out, execution)
    return out


def _attach_traces_and_prompts(ctx: RunContext, out: EvalResult, execution: Execution) -> None:
    from workbench.tracking.prompts import register_prompts
    from workbench.tracking.traces import log_request_traces, row_scores

    assert ctx.tracker is not None and out.run_id is not None
    # Each answered question's scores go on its trace as assessments (failed and NaN ones left out).
    names = out.scores["metric"].tolist() if not out.scores.empty else []
    rows = execution.frame.to_dict(orient="records")
    done = [
        (s, str(r["question_id"]), row_scores(r, names))
        for s, r in zip(execution.states, rows, strict=True)
        if s is not None
    ]
    out.trace_ids = log_request_traces(
        ctx.tracker,
        ctx.config.name,
        out.run_id,
        [s for s, _, _ in done],
        [q for _, q, _ in done],
        scores=[scores for _, _, scores in done],
    )
    out.prompt_uris = register_prompts(ctx.tracker, ctx.config.prompts, out.run_id)
