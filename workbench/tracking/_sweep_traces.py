"""One MLflow trace per question row of a sweep variant, with its scores as CODE assessments.

The scores travel inside the `TraceInfo` given to `start_trace`, so a trace and all its
assessments are one write (one SQLite transaction, one HTTP call), and spans go in batches.
Each trace carries `mlflow.sourceRun` (the variant's child run) and `mlflow.modelId` (the
variant's LoggedModel), which is what MLflow's run and model views filter on.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from workbench.core.state import RequestState, StageTiming
from workbench.tracking.traces import (
    SPANS_PER_BATCH,
    _to_mlflow,
    build_spans,
    row_scores,
    score_feedback,
    score_value,
)

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

STAGE_PREFIX = "t_"
ASSESSMENT_SOURCE = "workbench.sweep"
_SEARCH_PAGE = 500
TRACE_WRITERS = 4


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(math.isnan(value))
    except TypeError:
        return False


def _text(value: Any) -> str | None:
    return None if _missing(value) else str(value)


def _row_state(row: dict[str, Any], stages: Sequence[str], end: float) -> RequestState:
    """A request state rebuilt from a table row: question, answer and one timing per `t_<stage>`."""
    seconds = [(stage, score_value(row.get(STAGE_PREFIX + stage))) for stage in stages]
    timed = [(stage, s) for stage, s in seconds if s is not None and s >= 0]
    start = end - sum(s for _, s in timed)
    timings = []
    for stage, s in timed:
        timings.append(StageTiming(stage=stage, seconds=s, started_at=start))
        start += s
    return RequestState(query=_text(row.get("question")) or "", answer=_text(row.get("answer")), timings=tuple(timings))


def variant_traces(
    table: pd.DataFrame,
    metric_names: Sequence[str],
    *,
    experiment_id: str,
    run_id: str,
    model_id: str,
    tags: dict[str, str],
) -> tuple[list[Any], list[Any], int]:
    """The `TraceInfo`s (scores attached) and spans of one variant's rows, and the score count."""
    from mlflow.entities import TraceState

    stages = [str(c).removeprefix(STAGE_PREFIX) for c in table.columns if str(c).startswith(STAGE_PREFIX)]
    metrics = [m for m in metric_names if m in table.columns]
    rows = table.to_dict(orient="records")
    # Rows are laid out a millisecond apart, ending now, so the UI lists them in table order.
    end = time.time() - len(rows) * 1e-3
    infos: list[Any] = []
    spans: list[Any] = []
    scores = 0
    for index, row in enumerate(rows):
        state = _row_state(row, stages, end + index * 1e-3)
        question_id = str(row.get("question_id", index))
        info, trace_spans = _to_mlflow(build_spans(state), state, question_id, experiment_id, run_id)
        metadata = {"question_id": question_id, "repeat": str(row.get("repeat", 0)), **tags}
        feedback = score_feedback(
            info.trace_id, row_scores(row, metrics), source_id=ASSESSMENT_SOURCE, metadata=metadata
        )
        scores += len(feedback)
        error = _text(row.get("error"))
        infos.append(
            dataclasses.replace(
                info,
                state=TraceState.ERROR if error else TraceState.OK,
                trace_metadata={**info.trace_metadata, "mlflow.modelId": model_id},
                tags={**info.tags, **metadata, **({"error": error[:1000]} if error else {})},
                assessments=feedback,
            )
        )
        spans.extend(trace_spans)
    return infos, spans, scores


def write_variant_traces(tracing: Any, experiment_id: str, infos: list[Any], spans: list[Any]) -> None:
    """Start every trace (assessments included), then write the spans in batches.

    Traces are started from a few threads: each is its own transaction, and on SQLite the
    commits queue up while the next traces are prepared (on a server, requests overlap).
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=TRACE_WRITERS, thread_name_prefix="workbench-trace") as pool:
        list(pool.map(tracing.start_trace, infos))
    for start in range(0, len(spans), SPANS_PER_BATCH):
        tracing.log_spans(experiment_id, spans[start : start + SPANS_PER_BATCH])


def delete_run_traces(client: MlflowClient, experiment_id: str, run_id: str) -> int:
    """Delete the traces linked to `run_id` (before logging them again); returns how many."""
    ids: list[str] = []
    token = None
    while True:
        page = client.search_traces(
            locations=[experiment_id], run_id=run_id, include_spans=False, max_results=_SEARCH_PAGE, page_token=token
        )
        ids.extend(t.info.trace_id for t in page)
        token = page.token
        if not token:
            break
    for start in range(0, len(ids), 100):
        client.delete_traces(experiment_id, trace_ids=ids[start : start + 100])
    return len(ids)
