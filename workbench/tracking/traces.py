"""One MLflow trace per request: a root span for the request and one child span per stage.

Spans are placed in time from each `StageTiming` (`started_at` + `seconds`), so a trace
shows what actually happened during the run, not when it was logged. Traces carry the
`mlflow.sourceRun` metadata, which is what puts them in the run's Traces tab.

The traces are built as finished span records and written in bulk (one `start_trace` per
trace, spans in batches) to the tracker's own store. MLflow's fluent tracing is not used: it
exports through a process-wide tracer to the process-wide tracking URI.

A trace linked to a run that has a LoggedModel (tag `workbench.model_id`) is linked to that
model too (`mlflow.modelId`), and per-question scores travel inside the trace as CODE
assessments, so MLflow's evaluation views show them per question.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import math
import secrets
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from workbench.core.errors import TrackingError
from workbench.core.redact import redact_text
from workbench.core.state import RequestState, StageTiming

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

ROOT_SPAN = "rag_request"
QUESTION_TAG = "question_id"
REQUEST_TAG = "workbench.request_id"
SPANS_PER_BATCH = 500
MODEL_ID_TAG = "workbench.model_id"  # the run's LoggedModel, as `log_run` tags it
FAILED_SUFFIX = "__failed"  # scoring marks a metric that failed on a row (its value is no score)
EVAL_SOURCE = "workbench.eval"
_PREVIEW = 1000
_TEXT_IN_SPAN = 2000

# Stage names are free text (`stage.name or stage.kind`); the first fragment found decides.
_SPAN_TYPES = (
    ("rerank", "RERANKER"),
    ("retriev", "RETRIEVER"),
    ("generat", "LLM"),
    ("judge", "EVALUATOR"),
    ("guard", "GUARDRAIL"),
    ("rout", "CHAIN"),
)


class TraceSink(Protocol):
    """Anything with `log_traces` (an `MlflowTracker`, an `InMemoryTracker`)."""

    def log_traces(
        self,
        *,
        experiment: str | None,
        run_id: str | None,
        states: Sequence[RequestState],
        question_ids: Sequence[str],
        scores: Sequence[Mapping[str, float]] | None = None,
    ) -> list[str]: ...


@dataclass(frozen=True)
class SpanRecord:
    """A finished span, in plain Python: what `build_spans` produces before MLflow is involved."""

    name: str
    span_type: str
    start_ns: int
    end_ns: int
    inputs: Any = None
    outputs: Any = None
    attributes: dict[str, Any] = field(default_factory=dict)


def log_request_traces(
    target: TraceSink | MlflowClient,
    experiment: str | None,
    run_id: str | None,
    states: Sequence[RequestState],
    question_ids: Sequence[str],
    *,
    scores: Sequence[Mapping[str, float]] | None = None,
) -> list[str]:
    """Log one trace per request state; returns the trace ids in the order of `states`.

    `target` is a tracker (`MlflowTracker`, `InMemoryTracker`) or an `mlflow.MlflowClient`.
    `experiment` is a name or an id (None: the run's experiment). With a `run_id`, the
    traces are linked to that run (and to its LoggedModel, if it has one). Each trace is
    tagged with its question id. `scores`, one {metric: value} per state, are attached to
    the traces as CODE assessments (see `row_scores`).
    """
    _check_lengths(states, question_ids)
    if scores is not None and len(scores) != len(states):
        raise TrackingError(f"got {len(states)} request states but {len(scores)} score rows")
    extra = {} if scores is None else {"scores": scores}  # sinks without scores keep working
    log_traces = getattr(target, "log_traces", None)
    if callable(log_traces):
        result: list[str] = log_traces(
            experiment=experiment, run_id=run_id, states=states, question_ids=question_ids, **extra
        )
        return result
    try:
        return write_traces(target, experiment, run_id, states, question_ids, scores=scores)  # type: ignore[arg-type]
    except TrackingError:
        raise
    except Exception as exc:
        first = redact_text((str(exc).strip().splitlines() or [""])[0][:300])
        raise TrackingError(f"MLflow: could not log traces: {type(exc).__name__}: {first}") from exc


def write_traces(
    client: MlflowClient,
    experiment: str | None,
    run_id: str | None,
    states: Sequence[RequestState],
    question_ids: Sequence[str],
    *,
    scores: Sequence[Mapping[str, float]] | None = None,
    create: Callable[[str], str] | None = None,
) -> list[str]:
    """Write the traces through `client`'s store. MLflow errors propagate; callers wrap them.

    `create` makes a missing experiment (an `MlflowTracker` sets its artifact location).
    """
    from workbench.tracking._mlflow import experiment_for, tracing_client

    _check_lengths(states, question_ids)
    if not states:
        return []
    experiment_id = experiment_for(client, experiment, run_id, create=create)
    model_id = client.get_run(run_id).data.tags.get(MODEL_ID_TAG) if run_id else None
    tracing = tracing_client(client)
    now = time.time()
    trace_ids: list[str] = []
    spans: list[Any] = []
    rows: Sequence[Mapping[str, float]] = scores if scores is not None else [{}] * len(states)
    for state, question_id, row in zip(states, question_ids, rows, strict=True):
        records = build_spans(state, now=now)
        info, trace_spans = _to_mlflow(records, state, question_id, experiment_id, run_id)
        if model_id:
            info = dataclasses.replace(info, trace_metadata={**info.trace_metadata, "mlflow.modelId": model_id})
        if row:
            metadata = {QUESTION_TAG: question_id, **({MODEL_ID_TAG: model_id} if model_id else {})}
            feedback = score_feedback(info.trace_id, row, source_id=EVAL_SOURCE, metadata=metadata)
            info = dataclasses.replace(info, assessments=feedback)
        tracing.start_trace(info)
        trace_ids.append(info.trace_id)
        spans.extend(trace_spans)
    for start in range(0, len(spans), SPANS_PER_BATCH):
        tracing.log_spans(experiment_id, spans[start : start + SPANS_PER_BATCH])
    log.info("logged %d traces to experiment %s (run %s)", len(trace_ids), experiment_id, run_id)
    return trace_ids


def score_value(value: Any) -> float | None:
    """A finite float, or None for a missing score (None, NaN, infinite, not a number)."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def row_scores(row: Mapping[str, Any], metrics: Sequence[str]) -> dict[str, float]:
    """The scores of one result row worth an assessment: finite values of `metrics`, leaving
    out missing ones and those scoring marked failed (`<metric>__failed`), which are no 0."""
    out: dict[str, float] = {}
    for name in metrics:
        if score_value(row.get(name + FAILED_SUFFIX)):  # True (or 1); None/NaN/False: not failed
            continue
        value = score_value(row.get(name))
        if value is not None:
            out[name] = value
    return out


def score_feedback(
    trace_id: str,
    scores: Mapping[str, Any],
    *,
    source_id: str,
    metadata: Mapping[str, str],
) -> list[Any]:
    """One CODE `Feedback` per finite score, to travel in the trace's `TraceInfo.assessments`."""
    from mlflow.entities import AssessmentSource, Feedback

    source = AssessmentSource(source_type="CODE", source_id=source_id)
    feedback = []
    for name, raw in scores.items():
        value = score_value(raw)
        if value is not None:
            feedback.append(Feedback(name=name, value=value, source=source, trace_id=trace_id, metadata=dict(metadata)))
    return feedback


def build_spans(state: RequestState, *, now: float | None = None) -> list[SpanRecord]:
    """The root span then one span per stage timing, with times in epoch nanoseconds.

    A timing without `started_at` (older states) is placed right after the previous stage.
    """
    placed = _place(state.timings, time.time() if now is None else now)
    children = [
        SpanRecord(
            name=timing.stage,
            span_type=stage_span_type(timing.stage, state),
            start_ns=start,
            end_ns=end,
            **_stage_detail(timing, state),
        )
        for timing, (start, end) in zip(state.timings, placed, strict=True)
    ]
    if placed:
        root_start, root_end = min(s for s, _ in placed), max(e for _, e in placed)
    else:
        root_start = root_end = int((time.time() if now is None else now) * 1e9)
    root = SpanRecord(
        name=ROOT_SPAN,
        span_type="CHAIN",
        start_ns=root_start,
        end_ns=root_end,
        inputs=state.query,
        outputs=state.answer,
        attributes={
            "request_id": state.request_id,
            "route": state.route,
            "route_score": state.route_score,
            "blocked": state.blocked,
            "abstained": state.abstained,
            "tokens_in": state.tokens_in,
            "tokens_out": state.tokens_out,
            "cost": state.cost,
            "fallback_used": state.fallback_used,
            "guards_triggered": sorted({v.check for v in state.verdicts if v.triggered}),
        },
    )
    return [root, *children]


def stage_span_type(stage: str, state: RequestState) -> str:
    """MLflow span type for a stage name; a stage that left guard verdicts is a guardrail."""
    if any(v.stage == stage for v in state.verdicts):
        return "GUARDRAIL"
    lowered = stage.lower()
    for fragment, span_type in _SPAN_TYPES:
        if fragment in lowered:
            return span_type
    return "UNKNOWN"


# -- internals ------------------------------------------------------------------------------


def _check_lengths(states: Sequence[RequestState], question_ids: Sequence[str]) -> None:
    if len(states) != len(question_ids):
        raise TrackingError(f"got {len(states)} request states but {len(question_ids)} question ids")


def _place(timings: Sequence[StageTiming], now: float) -> list[tuple[int, int]]:
    total = sum(max(t.seconds, 0.0) for t in timings)
    cursor = now - total  # fallback start for timings that carry no start time
    placed = []
    for timing in timings:
        start = timing.started_at if timing.started_at > 0 else cursor
        end = start + max(timing.seconds, 0.0)
        placed.append((int(start * 1e9), int(end * 1e9)))
        cursor = end
    return placed


def _short(text: str | None, limit: int = _TEXT_IN_SPAN) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[:limit] + "...[truncated]"


def _stage_detail(timing: StageTiming, state: RequestState) -> dict[str, Any]:
    """inputs, outputs and attributes of one stage span, by what the stage is."""
    attributes: dict[str, Any] = {"cached": timing.cached, "seconds": timing.seconds}
    span_type = stage_span_type(timing.stage, state)
    inputs: Any = None
    outputs: Any = None
    if span_type in ("RETRIEVER", "RERANKER"):
        # The state keeps only the final chunks, so retriever and re-ranker spans show the same list.
        inputs = {"query": state.query}
        outputs = [
            {
                "id": c.chunk_id,
                "page_content": _short(c.text, 500),
                "metadata": {"doc_id": c.doc_id, "start": c.start, "end": c.end, "score": c.score, **c.scores},
            }
            for c in state.chunks
        ]
        attributes |= {"chunk_ids": [c.chunk_id for c in state.chunks], "scores": [c.score for c in state.chunks]}
    elif span_type == "LLM":
        inputs = {"prompt": _short(state.prompt)}
        outputs = state.answer
        calls = [c.model_dump(mode="json") for c in state.calls]
        attributes |= {
            "endpoint": ", ".join(c.endpoint for c in state.calls),
            "model": ", ".join(c.model for c in state.calls),
            "tokens_in": state.tokens_in,
            "tokens_out": state.tokens_out,
            "cost": state.cost,
            "calls": calls,
            # MLflow's own keys, so the UI shows token counts and cost for the trace.
            "mlflow.chat.tokenUsage": {
                "input_tokens": state.tokens_in,
                "output_tokens": state.tokens_out,
                "total_tokens": state.tokens_in + state.tokens_out,
            },
            "mlflow.llm.cost": {"input_cost": 0.0, "output_cost": 0.0, "total_cost": state.cost},
        }
        if state.calls:
            attributes["mlflow.llm.model"] = state.calls[-1].model
    elif span_type == "GUARDRAIL":
        verdicts = [v.model_dump(mode="json") for v in state.verdicts if v.stage == timing.stage]
        inputs = {"query": state.query}
        outputs = {"blocked": state.blocked, "verdicts": verdicts}
        attributes |= {"verdicts": verdicts, "triggered": [v["check"] for v in verdicts if v["triggered"]]}
    elif span_type == "CHAIN":
        outputs = {"route": state.route, "score": state.route_score}
        attributes |= {"route": state.route, "route_score": state.route_score}
    return {"inputs": inputs, "outputs": outputs, "attributes": attributes}


def _b64(value: int, size: int) -> str:
    return base64.b64encode(value.to_bytes(size, "big")).decode()


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _to_mlflow(
    records: list[SpanRecord], state: RequestState, question_id: str, experiment_id: str, run_id: str | None
) -> tuple[Any, list[Any]]:
    """An MLflow `TraceInfo` and its `Span` entities for one request."""
    from mlflow.entities import Span, TraceInfo, TraceLocation, TraceState

    otel_trace_id = uuid.uuid4().int
    trace_id = f"tr-{otel_trace_id:032x}"
    root_id = secrets.randbits(64) or 1
    spans = []
    for index, record in enumerate(records):
        span_id = root_id if index == 0 else (secrets.randbits(64) or 1)
        attributes = {
            "mlflow.traceRequestId": _json(trace_id),
            "mlflow.spanType": _json(record.span_type),
            "mlflow.spanInputs": _json(record.inputs),
            "mlflow.spanOutputs": _json(record.outputs),
            **{key: _json(value) for key, value in record.attributes.items()},
        }
        spans.append(
            Span.from_dict(
                {
                    "trace_id": _b64(otel_trace_id, 16),
                    "span_id": _b64(span_id, 8),
                    "parent_span_id": None if index == 0 else _b64(root_id, 8),
                    "name": record.name,
                    "start_time_unix_nano": record.start_ns,
                    "end_time_unix_nano": record.end_ns,
                    "status": {"code": "STATUS_CODE_OK", "message": ""},
                    "attributes": attributes,
                }
            )
        )
    root = records[0]
    metadata = {"mlflow.sourceRun": run_id} if run_id else {}
    info = TraceInfo(
        trace_id=trace_id,
        trace_location=TraceLocation.from_experiment_id(experiment_id),
        request_time=root.start_ns // 1_000_000,
        execution_duration=max((root.end_ns - root.start_ns) // 1_000_000, 0),
        state=TraceState.OK,
        request_preview=_short(state.query, _PREVIEW),
        response_preview=_short(state.answer, _PREVIEW),
        client_request_id=state.request_id,
        trace_metadata=metadata,
        tags={"mlflow.traceName": ROOT_SPAN, QUESTION_TAG: question_id, REQUEST_TAG: state.request_id},
    )
    return info, spans
