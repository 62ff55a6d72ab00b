"""Run a pipeline over a dataset: concurrently, with a progress bar, results to parquet and
DuckDB, and one tracked run."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from workbench.core.config import flatten
from workbench.core.dataset import Dataset, Question, load_dataset
from workbench.core.errors import WorkbenchError
from workbench.core.state import RequestState
from workbench.evaluation import summarize

if TYPE_CHECKING:
    from workbench.session import Workbench


@dataclass
class RunResult:
    run_id: str | None
    frame: pd.DataFrame
    metrics: dict[str, float]
    parquet_path: Path | None


def _normalise(text: str | None) -> str:
    return re.sub(r"\W+", " ", (text or "").lower()).strip()


def question_row(question: Question, state: RequestState | None, latency_s: float, error: str | None) -> dict[str, Any]:
    from workbench.retrieval.hits import first_hit_rank

    row: dict[str, Any] = {
        "question_id": question.id,
        "question": question.question,
        "gold_answer": question.answer,
        "answerable": question.answerable,
        "has_evidence": bool(question.evidence),
        "latency_s": latency_s,
        "error": error,
    }
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
    gold = _normalise(question.answer)
    row |= {
        "route": state.route,
        "route_score": state.route_score,
        "answer": state.answer,
        "abstained": state.abstained,
        "blocked": state.blocked,
        "hit": bool(rank),
        "hit_rank": rank or 0,
        "contains_gold": bool(gold) and gold in _normalise(state.answer),
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
    row["cached_stages"] = sum(t.cached for t in state.timings)
    for timing in state.timings:
        row[f"t_{timing.stage}"] = row.get(f"t_{timing.stage}", 0.0) + timing.seconds
    return row


# The result row, and either the final state or the error that stopped the question.
Outcome = tuple[dict[str, Any], RequestState | WorkbenchError]


async def _run_all(wb: Workbench, questions: list[Question], progress: bool) -> list[Outcome]:
    from tqdm.auto import tqdm

    semaphore = asyncio.Semaphore(wb.config.concurrency)
    bar = tqdm(total=len(questions), desc=wb.config.name, unit="q", disable=not progress)

    async def one(question: Question) -> Outcome:
        async with semaphore:
            start = time.perf_counter()
            try:
                state = await wb.pipeline.arun(RequestState(query=question.question))
                return question_row(question, state, time.perf_counter() - start, None), state
            except WorkbenchError as exc:  # one bad question must not lose the others
                error = f"{type(exc).__name__}: {exc}"
                return question_row(question, None, time.perf_counter() - start, error), exc
            finally:
                bar.update(1)

    try:
        return list(await asyncio.gather(*(one(q) for q in questions)))
    finally:
        bar.close()


def code_version() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _results_path(wb: Workbench, dataset: Dataset) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return wb.root / "results" / wb.config.name / f"{stamp}-{dataset.name}.parquet"


@dataclass
class Execution:
    """A dataset run before it is recorded: the rows, and the request states behind them."""

    dataset: Dataset
    frame: pd.DataFrame
    states: list[RequestState | None]


def execute(wb: Workbench, dataset: str | Path, *, limit: int | None, progress: bool) -> Execution:
    """Ingest the dataset's corpus (incrementally) and run every question concurrently."""
    from workbench.core.errors import DatasetError

    ds = load_dataset(dataset, root=wb.root / "datasets").limit(limit)
    if not ds.questions:
        raise DatasetError(f"dataset {ds.name} has no questions to run")
    wb.ingest(ds.path / "corpus.jsonl")
    outcomes = wb.loop.run(_run_all(wb, ds.questions, progress))
    states = [o if isinstance(o, RequestState) else None for _, o in outcomes]
    failures = [o for _, o in outcomes if isinstance(o, WorkbenchError)]
    if len(failures) == len(outcomes):
        first = failures[0]
        raise _message_class(first)(f"all {len(outcomes)} questions failed; first: {first}") from first
    return Execution(ds, pd.DataFrame([row for row, _ in outcomes]), states)


def run_tags(wb: Workbench, ds: Dataset) -> dict[str, str]:
    return {
        "dataset": ds.name,
        "dataset_hash": ds.content_hash,
        "code_version": code_version(),
        "config_name": wb.config.name,
    }


def record(
    wb: Workbench,
    execution: Execution,
    metrics: dict[str, float],
    *,
    log: bool,
    tags: dict[str, str] | None = None,
    kind: str = "run",
) -> RunResult:
    """Write results to parquet and DuckDB, and log one tracked run."""
    from workbench.tracking.results import append_duckdb, write_parquet_atomic

    ds, frame = execution.dataset, execution.frame
    parquet = write_parquet_atomic(frame, _results_path(wb, ds))
    run_id = None
    if log:
        run_id = wb.tracker.log_run(
            experiment=wb.config.name,
            run_name=f"{wb.config.name}-{ds.name}-{kind}",
            config_yaml=wb.config_yaml,
            params=flatten(wb.config.model_dump(mode="json")),
            metrics=metrics,
            tags=run_tags(wb, ds) | {"workbench.kind": kind} | (tags or {}),
            table=frame,
            artifacts=[parquet],
        )
    append_duckdb(frame.assign(run_id=run_id or ""), wb.root / "results" / "results.duckdb")
    return RunResult(run_id, frame, metrics, parquet)


def run_dataset(wb: Workbench, dataset: str | Path, *, limit: int | None, log: bool, progress: bool) -> RunResult:
    execution = execute(wb, dataset, limit=limit, progress=progress)
    return record(wb, execution, summarize(execution.frame), log=log)


def _message_class(exc: WorkbenchError) -> type[WorkbenchError]:
    """The nearest class of `exc` built from a message alone (a few leaves take other arguments),
    so a run that fails entirely raises the kind of error its questions did."""
    for cls in type(exc).__mro__:
        if "__init__" not in vars(cls) and issubclass(cls, WorkbenchError):
            return cls
    return WorkbenchError
