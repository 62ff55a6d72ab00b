"""The one scoring path: every metric (offline, ragas, LLM-judged) scores every row here.

A metric that raises, or returns `failed=True`, is counted as a failure for that row and
metric only; the other metrics of the row keep their scores. Rows lacking a metric's
`requires` (or for which it returns `value=None` without failing) are counted as not
applicable. Neither is ever turned into a 0 or hidden as a bare NaN: the frame carries
`<metric>__failed` / `<metric>__error` columns and the report carries the counts.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from workbench.core.aio import LoopThread
from workbench.core.errors import EvaluationError
from workbench.evaluation.base import Metric, MetricResult, ScoreInput

__all__ = ["ScoreReport", "score", "score_sync"]

log = logging.getLogger(__name__)

# For these fields an empty value means "not given" (no gold evidence, no reference); an empty
# `contexts` or `retrieved` list is a real outcome (nothing was retrieved) and still scores.
_EMPTY_IS_MISSING = frozenset({"evidence", "reference", "reference_contexts"})
_WEAK_SUFFIX = " (weak judge)"


@dataclass
class ScoreReport:
    """Scores of one run. `frame` has one row per item, in input order: `question_id`, then for
    each metric its value column and, where that metric failed somewhere, `__failed`/`__error`."""

    frame: pd.DataFrame
    metrics: list[str]
    failures: dict[str, int] = field(default_factory=dict)
    not_applicable: dict[str, int] = field(default_factory=dict)
    judge_info: dict[str, dict[str, Any]] = field(default_factory=dict)

    def scored(self) -> dict[str, int]:
        """Rows that produced a value, per metric."""
        return {m: int(self.frame[m].notna().sum()) for m in self.metrics}

    def aggregates(self) -> dict[str, float]:
        """Mean over scored rows (not failed, applicable) per metric; metrics that scored no
        row are left out rather than reported as NaN."""
        out: dict[str, float] = {}
        for name in self.metrics:
            values = self.frame[name].dropna()
            if len(values):
                out[name] = float(values.astype(float).mean())
        return out


def _missing(item: ScoreInput, name: str) -> bool:
    value = getattr(item, name, None)
    return value is None or (name in _EMPTY_IS_MISSING and not value)


async def _one(metric: Metric, item: ScoreInput) -> MetricResult | None:
    """The metric's result, or None when the row does not apply."""
    if any(_missing(item, f) for f in metric.requires):
        return None
    try:
        result = await metric.ascore(item)
    except Exception as exc:  # one metric failing on one row must not lose the other scores
        log.debug("metric %s failed on %s", metric.name, item.question_id, exc_info=True)
        return MetricResult(value=None, failed=True, error=f"{type(exc).__name__}: {exc}")
    if result.failed:
        return result
    if result.value is None:
        return None
    if math.isnan(result.value):  # a NaN is a failure that forgot to say so
        return result.model_copy(update={"value": None, "failed": True, "error": result.error or "metric returned NaN"})
    return result


def _check_names(metrics: Sequence[Metric]) -> list[str]:
    names = [m.name for m in metrics]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise EvaluationError(f"metric names must be unique; repeated: {', '.join(duplicates)}")
    return names


async def score(
    items: Sequence[ScoreInput],
    metrics: Sequence[Metric],
    *,
    concurrency: int = 8,
    progress: bool = False,
) -> ScoreReport:
    """Score every item with every metric, at most `concurrency` (item, metric) calls at once."""
    from tqdm.auto import tqdm

    if concurrency < 1:
        raise EvaluationError(f"concurrency must be at least 1, got {concurrency}")
    names = _check_names(metrics)
    results: list[list[MetricResult | None]] = [[None] * len(metrics) for _ in items]
    pairs: Iterator[tuple[int, int]] = ((i, j) for i in range(len(items)) for j in range(len(metrics)))
    bar = tqdm(total=len(items) * len(metrics), desc="scoring", unit="score", disable=not progress)

    async def worker() -> None:
        for i, j in pairs:  # a shared iterator: each pair goes to exactly one worker
            results[i][j] = await _one(metrics[j], items[i])
            bar.update(1)

    try:
        await asyncio.gather(*(worker() for _ in range(min(concurrency, max(1, len(items) * len(metrics))))))
    finally:
        bar.close()
    return _report(items, metrics, names, results)


def _report(
    items: Sequence[ScoreInput],
    metrics: Sequence[Metric],
    names: list[str],
    results: list[list[MetricResult | None]],
) -> ScoreReport:
    columns: dict[str, list[Any]] = {
        "question_id": [item.question_id if item.question_id is not None else str(i) for i, item in enumerate(items)]
    }
    failures: dict[str, int] = {}
    not_applicable: dict[str, int] = {}
    judge_info: dict[str, dict[str, Any]] = {}
    for j, metric in enumerate(metrics):
        column = [row[j] for row in results]
        columns[metric.name] = [r.value if r is not None and not r.failed else None for r in column]
        failed = [r is not None and r.failed for r in column]
        failures[metric.name] = sum(failed)
        not_applicable[metric.name] = sum(r is None for r in column)
        if any(failed):
            columns[f"{metric.name}__failed"] = failed
            columns[f"{metric.name}__error"] = [r.error if r is not None and r.failed else None for r in column]
        if metric.kind == "judge":
            judge_info[metric.name] = _judge_info(metric, column)
            columns[f"{metric.name}__retries"] = [r.retries if r is not None else 0 for r in column]
            if any(r is not None and len(r.samples) > 1 for r in column):
                # Repeated judgments: the spread says how far one verdict can be trusted.
                columns[f"{metric.name}__variance"] = [r.variance if r is not None else None for r in column]
    frame = pd.DataFrame(columns)
    for name in names:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    return ScoreReport(frame, names, failures, not_applicable, judge_info)


def _judge_info(metric: Metric, column: list[MetricResult | None]) -> dict[str, Any]:
    labelled = next((r for r in column if r is not None and r.judge), None)
    label = labelled.judge if labelled else None
    judge = getattr(metric, "judge", None)  # judged metrics hold their Judge; others may not
    weak = bool(getattr(judge, "weak", False)) or bool(label and label.endswith(_WEAK_SUFFIX))
    name = getattr(judge, "name", None) or (label.removesuffix(_WEAK_SUFFIX) if label else None)
    version = labelled.prompt_version if labelled else getattr(judge, "prompt_version", None)
    return {"judge": name, "prompt_version": version, "weak": weak}


_DEFAULT_LOOP = LoopThread()


def score_sync(
    items: Sequence[ScoreInput],
    metrics: Sequence[Metric],
    *,
    concurrency: int = 8,
    progress: bool = False,
    loop: LoopThread | None = None,
) -> ScoreReport:
    """`score` from synchronous code, on a long-lived loop thread (works inside Jupyter, where
    an event loop is already running). Pass a session's `loop` to share its event loop."""
    runner = loop or _DEFAULT_LOOP
    return runner.run(score(items, metrics, concurrency=concurrency, progress=progress))
