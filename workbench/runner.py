"""Run a pipeline over a dataset: concurrently, with a progress bar, results to parquet and
DuckDB, and one tracked run.

The runner takes the parts it needs (`RunContext`: config, pipeline, index fingerprint, event
loop, tracker, results folder) from its caller and never calls back into the session.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from workbench.core.aio import LoopThread
from workbench.core.config import flatten
from workbench.core.dataset import Dataset, Question
from workbench.core.errors import DatasetError, WorkbenchError
from workbench.core.schema import PipelineConfig
from workbench.core.stage import Pipeline
from workbench.core.state import RequestState
from workbench.core.text import contains_phrase
from workbench.evaluation import summarize
from workbench.evaluation.calibration_counts import LABEL_COLUMNS

if TYPE_CHECKING:
    from workbench.tracking import Tracker
    from workbench.tracking.tracker import DatasetRef, ModelRef

log = logging.getLogger(__name__)

# Written instead of a question the input guard would have masked but never saw (the question
# failed first): the raw text may hold personal data, and question_id still identifies it.
UNMASKED_PLACEHOLDER = "<withheld: the question failed before its input checks ran>"


@dataclass
class RunResult:
    run_id: str | None
    frame: pd.DataFrame
    metrics: dict[str, float]
    parquet_path: Path | None


@dataclass
class RunContext:
    """What a dataset run needs, handed in by the caller."""

    config: PipelineConfig
    config_yaml: str
    pipeline: Pipeline
    index_fingerprint: str
    loop: LoopThread
    results_dir: Path
    tracker: Tracker | None = None
    run_key: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def masks_input(self) -> bool:
        return any(check.action == "mask" for check in self.config.guardrails.input)


def question_row(
    question: Question, state: RequestState | None, latency_s: float, error: str | None, *, masks_input: bool = False
) -> dict[str, Any]:
    """One result row. The question recorded is the one the pipeline saw: after input masking."""
    from workbench.retrieval.hits import first_hit_rank

    raw = UNMASKED_PLACEHOLDER if masks_input else question.question
    text = state.query if state is not None else raw
    row: dict[str, Any] = {
        "question_id": question.id,
        "question": text,
        "gold_answer": question.answer,
        "answerable": question.answerable,
        "has_evidence": bool(question.evidence),
        "latency_s": latency_s,
        "error": error,
    }
    # Label columns only on labelled questions: unlabelled runs keep their columns as they were.
    row |= {k: getattr(question, k) for k in LABEL_COLUMNS if getattr(question, k) is not None}
    if state is None:
        return row | {
            "tokens_in": 0,
            "tokens_out": 0,
            "cost": 0.0,
            "fallback_used": False,
            "blocked": False,
            "abstained": False,
            "guards_triggered": [],
            "hit": False,
            "hit_rank": 0,
            "route": None,
        }
    rank = first_hit_rank(state.chunks, question.evidence) if question.evidence else 0
    row |= {
        "route": state.route,
        "route_score": state.route_score,
        "answer": state.answer,
        "abstained": state.abstained,
        "blocked": state.blocked,
        "hit": bool(rank),
        "hit_rank": rank or 0,
        "contains_gold": bool(question.answer) and contains_phrase(state.answer or "", question.answer or ""),
        "retrieved": [f"{c.doc_id}:{c.start}-{c.end}" for c in state.chunks],
        "contexts": [c.text for c in state.chunks],
        "tokens_in": state.tokens_in,
        "tokens_out": state.tokens_out,
        "cost": state.cost,
        "models": [c.endpoint for c in state.calls],
        "fallback_used": state.fallback_used,
        "guards_triggered": sorted({v.check for v in state.verdicts if v.triggered}),
        "verdicts": json.dumps([v.model_dump(mode="json") for v in state.verdicts]),
    }
    if state.model_choice is not None:  # columns only where a route selects: other runs keep theirs
        row |= {"model_choice": state.model_choice.model, "choice_reason": state.model_choice.reason}
        row["complexity"] = state.model_choice.complexity
    if state.tool_calls:  # a column only where a tool ran: other runs keep their columns
        row["tool_calls"] = json.dumps([c.model_dump(mode="json") for c in state.tool_calls])
    row["cached_stages"] = sum(t.cached for t in state.timings)
    for timing in state.timings:
        row[f"t_{timing.stage}"] = row.get(f"t_{timing.stage}", 0.0) + timing.seconds
    return row


# The result row, and either the final state or the error that stopped the question.
Outcome = tuple[dict[str, Any], RequestState | Exception]


def _error_text(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


async def _run_all(ctx: RunContext, questions: list[Question], done: dict[int, Outcome], progress: bool) -> None:
    """Answer every question; each finished outcome lands in `done` (by position) at once, so
    an interrupted run still has every row it finished."""
    from tqdm.auto import tqdm

    semaphore = asyncio.Semaphore(ctx.config.concurrency)
    bar = tqdm(total=len(questions), desc=ctx.config.name, unit="q", disable=not progress)

    async def one(i: int, question: Question) -> None:
        async with semaphore:
            start = time.perf_counter()
            try:
                state = await ctx.pipeline.arun(RequestState(query=question.question))
                row = question_row(question, state, time.perf_counter() - start, None, masks_input=ctx.masks_input)
                done[i] = (row, state)
            except Exception as exc:  # one bad question must not lose the others
                if not isinstance(exc, WorkbenchError):
                    # Not the user's input: a bug. Keep the traceback in the log, the row says what.
                    log.error("question %s failed:\n%s", question.id, traceback.format_exc())
                elapsed = time.perf_counter() - start
                row = question_row(question, None, elapsed, _error_text(exc), masks_input=ctx.masks_input)
                done[i] = (row, exc)
            finally:
                bar.update(1)

    tasks = [asyncio.ensure_future(one(i, q)) for i, q in enumerate(questions)]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        bar.close()


def code_version() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def results_path(ctx: RunContext, dataset: Dataset, suffix: str = "") -> Path:
    """A file of its own for every run: the time, the dataset and the run's key."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return ctx.results_dir / ctx.config.name / f"{stamp}-{dataset.name}-{ctx.run_key}{suffix}.parquet"


@dataclass
class Execution:
    """A dataset run before it is recorded: the rows, and the request states behind them."""

    dataset: Dataset
    frame: pd.DataFrame
    states: list[RequestState | None]


def _save_partial(ctx: RunContext, dataset: Dataset, done: dict[int, Outcome]) -> None:
    from workbench.tracking.results import write_parquet_atomic

    if not done:
        return
    rows = [done[i][0] for i in sorted(done)]
    path = write_parquet_atomic(pd.DataFrame(rows), results_path(ctx, dataset, ".partial"))
    log.warning("run interrupted: %d of %d finished rows kept in %s", len(rows), len(dataset.questions), path)


def execute(ctx: RunContext, dataset: Dataset, *, progress: bool) -> Execution:
    """Run every question of `dataset` concurrently through `ctx.pipeline`."""
    if not dataset.questions:
        raise DatasetError(f"dataset {dataset.name} has no questions to run")
    routes = ctx.config.routing.routes
    stray = next((q for q in dataset.questions if q.expected_route and q.expected_route not in routes), None)
    if stray is not None:
        raise DatasetError(
            f"{dataset.path / 'questions.jsonl'} question {stray.id}: expected_route {stray.expected_route!r} "
            f"is not a route of {ctx.config.name}; valid: {', '.join(sorted(routes))}"
        )
    done: dict[int, Outcome] = {}
    try:
        ctx.loop.run(_run_all(ctx, dataset.questions, done, progress))
    except BaseException:
        # Interrupted (Ctrl-C, a cancelled cell): the finished rows are kept, marked partial.
        _save_partial(ctx, dataset, done)
        raise
    outcomes = [done[i] for i in range(len(dataset.questions))]
    states = [o if isinstance(o, RequestState) else None for _, o in outcomes]
    failures = [o for _, o in outcomes if isinstance(o, Exception)]
    if len(failures) == len(outcomes):
        first = failures[0]
        cls = _message_class(first) if isinstance(first, WorkbenchError) else WorkbenchError
        raise cls(f"all {len(outcomes)} questions failed; first: {_error_text(first)}") from first
    return Execution(dataset, pd.DataFrame([row for row, _ in outcomes]), states)


def run_tags(ctx: RunContext, ds: Dataset) -> dict[str, str]:
    from workbench.tracking.tracker import CONFIG_HASH_TAG, config_hash

    return {
        "dataset": ds.name,
        "dataset_hash": ds.content_hash,
        "index_fingerprint": ctx.index_fingerprint,
        "code_version": code_version(),
        "config_name": ctx.config.name,
        "workbench.run_key": ctx.run_key,
        CONFIG_HASH_TAG: config_hash(ctx.config.model_dump(mode="json")),
    }


# The role of the dataset input of a run of each kind, as MLflow's views show it.
DATASET_CONTEXTS = {"eval": "evaluation", "run": "run"}
_DATASET_COLUMNS = ["question_id", "question", "gold_answer"]


def tracked_refs(ctx: RunContext, ds: Dataset, frame: pd.DataFrame, kind: str) -> tuple[DatasetRef, ModelRef]:
    """What a tracked run was made on and with: the dataset (questions as the pipeline saw them,
    masked, never the raw ones) and the config, as MLflow's dataset input and LoggedModel."""
    from workbench.tracking.tracker import DatasetRef, ModelRef, config_hash

    resolved = ctx.config.model_dump(mode="json")
    preview = frame[[c for c in _DATASET_COLUMNS if c in frame]].reset_index(drop=True)
    dataset = DatasetRef(ds.name, ds.content_hash, preview, DATASET_CONTEXTS.get(kind, kind))
    return dataset, ModelRef(ctx.config.name, config_hash(resolved), flatten(resolved))


def record(
    ctx: RunContext,
    execution: Execution,
    metrics: dict[str, float],
    *,
    tags: dict[str, str] | None = None,
    kind: str = "run",
) -> RunResult:
    """Write results to parquet and DuckDB, and log one tracked run when `ctx.tracker` is set."""
    from workbench.tracking.results import append_duckdb, write_parquet_atomic

    ds, frame = execution.dataset, execution.frame
    frame = frame.assign(index_fingerprint=ctx.index_fingerprint)
    parquet = write_parquet_atomic(frame, results_path(ctx, ds))
    run_id = None
    if ctx.tracker is not None:
        dataset, model = tracked_refs(ctx, ds, frame, kind)
        run_id = ctx.tracker.log_run(
            experiment=ctx.config.name,
            run_name=f"{ctx.config.name}-{ds.name}-{kind}",
            config_yaml=ctx.config_yaml,
            params=flatten(ctx.config.model_dump(mode="json")) | {"index_fingerprint": ctx.index_fingerprint},
            metrics=metrics,
            tags=run_tags(ctx, ds) | {"workbench.kind": kind} | (tags or {}),
            table=frame,
            artifacts=[parquet],
            dataset=dataset,
            model=model,
        )
    append_duckdb(frame.assign(run_id=run_id or ""), ctx.results_dir / "results.duckdb")
    return RunResult(run_id, frame, metrics, parquet)


def run_dataset(ctx: RunContext, dataset: Dataset, *, progress: bool) -> RunResult:
    execution = execute(ctx, dataset, progress=progress)
    return record(ctx, execution, summarize(execution.frame))


def _message_class(exc: WorkbenchError) -> type[WorkbenchError]:
    """The nearest class of `exc` built from a message alone (a few leaves take other arguments),
    so a run that fails entirely raises the kind of error its questions did."""
    for cls in type(exc).__mro__:
        if "__init__" not in vars(cls) and issubclass(cls, WorkbenchError):
            return cls
    return WorkbenchError
