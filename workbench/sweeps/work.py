"""One unit of sweep work, a (variant, question, repeat), and how it becomes a journal row.

`answer_items` is the one way work is done, in this process (`executors.LocalExecutor`) or in
a Ray worker: run the variant's pipeline, score the answer with the sweep's metrics, and count
what the row spent (a stage served from the cache spent nothing).
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from workbench.core.dataset import Document, Question
from workbench.core.errors import WorkbenchError
from workbench.core.schema import PipelineConfig
from workbench.core.state import RequestState
from workbench.evaluation.base import Metric
from workbench.sweeps.resources import SharedResources

log = logging.getLogger(__name__)

# Stages whose restored output carries model calls: a cache hit there cost no call.
_CALLING_STAGES = frozenset({"generator"})


@dataclass(frozen=True)
class WorkItem:
    variant: str
    question: Question
    repeat: int
    split: str

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.variant, self.question.id, self.repeat)


def spent(state: RequestState) -> dict[str, Any]:
    """What answering cost this time: calls, tokens and dollars of stages that really ran."""
    restored = any(t.cached and t.stage in _CALLING_STAGES for t in state.timings)
    calls = () if restored else state.calls
    return {
        "model_calls": len(calls),
        "tokens": sum(c.tokens_in + c.tokens_out for c in calls),
        "cost_fresh": sum(c.cost for c in calls),
    }


async def score_row(row: dict[str, Any], question: Question, metrics: Sequence[Metric]) -> dict[str, Any]:
    """The row's metric values (None where a metric does not apply or failed, with the error)."""
    from workbench.evaluation.rows import rows_from_results
    from workbench.evaluation.scoring import score

    items = rows_from_results(pd.DataFrame([row]), [question])
    if not items or not metrics:
        return {}
    report = await score(items, list(metrics), concurrency=len(metrics), progress=False)
    scored = report.frame.iloc[0].to_dict()
    scored.pop("question_id", None)
    return scored


async def answer_item(
    item: WorkItem,
    config: PipelineConfig,
    documents: Sequence[Document],
    resources: SharedResources,
    metrics: Sequence[Metric],
) -> dict[str, Any]:
    """The journal row of one item. A failure is a row with `error` set, never an exception."""
    from workbench.runner import question_row

    masks = any(check.action == "mask" for check in config.guardrails.input)
    pipeline = resources.pipeline(config, documents, cached=item.repeat == 0)
    head = {"variant": item.variant, "question_id": item.question.id, "repeat": item.repeat, "split": item.split}
    start = time.perf_counter()
    try:
        state = await pipeline.arun(RequestState(query=item.question.question))
    except Exception as exc:  # a failed question is a result: it must not stop the sweep
        if not isinstance(exc, WorkbenchError):
            log.error("question %s of %s failed:\n%s", item.question.id, item.variant, traceback.format_exc())
        row = question_row(
            item.question, None, time.perf_counter() - start, f"{type(exc).__name__}: {exc}", masks_input=masks
        )
        return head | row | {"model_calls": 0, "tokens": 0, "cost_fresh": 0.0}
    row = question_row(item.question, state, time.perf_counter() - start, None, masks_input=masks)
    row.pop("verdicts", None)  # per-check detail stays in traces; rows keep the triggered checks
    return head | row | spent(state) | await score_row(row, item.question, metrics)


async def answer_items(
    items: Sequence[WorkItem],
    configs: dict[str, PipelineConfig],
    documents: Sequence[Document],
    resources: SharedResources,
    metrics: Sequence[Metric],
    *,
    concurrency: int,
    on_row: Callable[[dict[str, Any]], Awaitable[None] | None],
    should_stop: Callable[[], bool] = lambda: False,
) -> None:
    """Answer `items` in order, `concurrency` at a time; `on_row` receives each row as it
    finishes. Once `should_stop()` turns true no new item starts; those in flight finish."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(item: WorkItem) -> None:
        try:
            row = await answer_item(item, configs[item.variant], documents, resources, metrics)
            result = on_row(row)
            if asyncio.iscoroutine(result):
                await result
        finally:
            semaphore.release()

    tasks: list[asyncio.Task[None]] = []
    try:
        for item in items:
            await semaphore.acquire()
            if should_stop():
                semaphore.release()
                break
            tasks.append(asyncio.ensure_future(one(item)))
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
