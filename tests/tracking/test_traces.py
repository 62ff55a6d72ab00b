from __future__ import annotations

from pathlib import Path

import pytest

from workbench.core.errors import TrackingError
from workbench.core.state import RequestState, StageTiming
from workbench.testing.tracker import InMemoryTracker
from workbench.tracking import MlflowTracker, log_request_traces
from workbench.tracking.traces import ROOT_SPAN, build_spans, stage_span_type


def test_spans_follow_stage_timings(request_states: list[RequestState]) -> None:
    state = request_states[2]
    root, guard, retriever, generator = build_spans(state)
    assert [s.name for s in (root, guard, retriever, generator)] == [ROOT_SPAN, "input_guard", "retriever", "generator"]
    assert root.inputs == state.query and root.outputs == state.answer
    assert guard.start_ns == root.start_ns == int(state.timings[0].started_at * 1e9)
    assert generator.end_ns == root.end_ns
    assert generator.end_ns - generator.start_ns == pytest.approx(0.5e9, rel=1e-6)
    assert (guard.span_type, retriever.span_type, generator.span_type) == ("GUARDRAIL", "RETRIEVER", "LLM")
    assert retriever.attributes["cached"] is True and guard.attributes["cached"] is False
    assert retriever.attributes["chunk_ids"] == ["d2-0", "d2-1"]
    assert retriever.attributes["scores"] == [0.9, 0.4]
    assert generator.attributes["endpoint"] == "local"
    assert generator.attributes["tokens_in"] == 40 and generator.attributes["cost"] == 0.001
    assert guard.attributes["verdicts"][0]["check"] == "pii"


def test_timings_without_start_are_laid_end_to_end() -> None:
    state = RequestState(
        query="q", timings=(StageTiming(stage="retriever", seconds=1.0), StageTiming(stage="x", seconds=2.0))
    )
    root, first, second = build_spans(state, now=1000.0)
    assert first.start_ns == int(997e9) and first.end_ns == second.start_ns and second.end_ns == int(1000e9)
    assert root.start_ns == first.start_ns and root.end_ns == second.end_ns
    assert stage_span_type("x", state) == "UNKNOWN"


def test_in_memory_tracker_records_traces(request_states: list[RequestState]) -> None:
    tracker = InMemoryTracker()
    run_id = tracker.log_run(experiment="e", run_name="r", config_yaml="", params={}, metrics={})
    ids = log_request_traces(tracker, None, run_id, request_states, ["q1", "q2", "q3"])
    assert len(set(ids)) == 3
    assert [t.question_id for t in tracker.traces] == ["q1", "q2", "q3"]
    assert all(t.run_id == run_id and t.experiment == "e" for t in tracker.traces)
    with pytest.raises(TrackingError, match="3 request states but 2"):
        log_request_traces(tracker, None, run_id, request_states, ["q1", "q2"])


# -- against a real SQLite store ----------------------------------------------------------------


def _run(tracker: MlflowTracker, experiment: str = "rag-eval") -> str:
    return tracker.log_run(experiment=experiment, run_name="r", config_yaml="", params={}, metrics={"m": 1.0})


@pytest.mark.integration
def test_traces_are_linked_to_the_run(tmp_path: Path, request_states: list[RequestState]) -> None:
    tracker = MlflowTracker(tmp_path / "mlflow.db")
    run_id = _run(tracker)
    ids = log_request_traces(tracker, "rag-eval", run_id, request_states, ["q1", "q2", "q3"])
    assert len(set(ids)) == 3

    client = tracker.client
    experiment_id = client.get_experiment_by_name("rag-eval").experiment_id
    found = client.search_traces(locations=[experiment_id], run_id=run_id)
    assert sorted(t.info.trace_id for t in found) == sorted(ids)
    by_question = {t.info.tags["question_id"]: t for t in found}
    assert set(by_question) == {"q1", "q2", "q3"}

    trace = client.get_trace(ids[0], display=False)
    assert trace.info.trace_metadata["mlflow.sourceRun"] == run_id
    names = [s.name for s in trace.data.spans]
    assert names[0] == ROOT_SPAN and sorted(names[1:]) == ["generator", "input_guard", "retriever"]
    root = trace.data.spans[0]
    assert root.inputs == "question 0?" and root.outputs == "answer 0"
    spans = {s.name: s for s in trace.data.spans}
    assert all(s.parent_id == root.span_id for s in trace.data.spans[1:])
    assert spans["retriever"].span_type == "RETRIEVER"
    assert spans["retriever"].attributes["chunk_ids"] == ["d0-0", "d0-1"]
    assert spans["generator"].attributes["model"] == "smollm2"
    assert spans["generator"].start_time_ns == int(request_states[0].timings[2].started_at * 1e9)
    assert trace.info.request_time == int(request_states[0].timings[0].started_at * 1000)


@pytest.mark.integration
def test_traces_with_a_plain_client_and_experiment_checks(tmp_path: Path, request_states: list[RequestState]) -> None:
    tracker = MlflowTracker(tmp_path / "mlflow.db")
    run_id = _run(tracker)
    ids = log_request_traces(tracker.client, None, run_id, request_states[:1], ["q1"])  # experiment from the run
    assert tracker.client.get_trace(ids[0], display=False).info.tags["question_id"] == "q1"
    _run(tracker, "other")
    with pytest.raises(TrackingError, match="belongs to experiment"):
        log_request_traces(tracker, "other", run_id, request_states[:1], ["q1"])
    # Without a run: traces land in the named experiment, created if missing.
    loose = log_request_traces(tracker, "loose", None, request_states, ["a", "b", "c"])
    loose_id = tracker.client.get_experiment_by_name("loose").experiment_id
    assert len(tracker.client.search_traces(locations=[loose_id])) == len(loose) == 3


@pytest.mark.integration
@pytest.mark.slow
def test_traces_prompts_and_feedback_over_an_mlflow_server(tmp_path: Path, request_states: list[RequestState]) -> None:
    from workbench.core.schema import PromptTemplate
    from workbench.testing.mlflow_server import mlflow_server
    from workbench.tracking import record_feedback, register_prompts

    with mlflow_server(tmp_path / "server") as url:
        tracker = MlflowTracker(url)
        run_id = _run(tracker)
        ids = log_request_traces(tracker, "rag-eval", run_id, request_states, ["q1", "q2", "q3"])
        trace = tracker.client.get_trace(ids[0], display=False)
        assert [s.name for s in trace.data.spans][0] == ROOT_SPAN
        assert trace.info.trace_metadata["mlflow.sourceRun"] == run_id
        prompts = {"qa": PromptTemplate(template="{context} {question}")}
        assert register_prompts(tracker, prompts, run_id) == register_prompts(tracker, prompts, run_id)
        record_feedback(
            duckdb_path=tmp_path / "f.duckdb",
            run_id=run_id,
            question_id="q1",
            thumbs="up",
            trace_id=ids[0],
            tracker=tracker,
        )
        assert tracker.client.get_trace(ids[0], display=False).info.assessments[0].value is True
