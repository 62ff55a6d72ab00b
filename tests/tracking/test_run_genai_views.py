"""Plain `run` and `eval` runs show in MLflow's GenAI views: a dataset input on the run, the
config as a LoggedModel the run links to, and per-question scores as trace assessments."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.conftest import write_config
from workbench.core.dataset import load_dataset
from workbench.session import Workbench
from workbench.testing.embedders import HashingEmbedder
from workbench.testing.tracker import InMemoryTracker
from workbench.tracking import MlflowTracker
from workbench.tracking.traces import row_scores
from workbench.tracking.tracker import DatasetRef, ModelRef, config_hash

pytestmark = pytest.mark.integration

METRICS = ["hit_at_k", "token_f1"]


def _workbench(tmp_path: Path, corpus: Path, tracker: object, **overrides: object) -> Workbench:
    config = write_config(tmp_path, corpus, **overrides)
    return Workbench.from_yaml(config, embedder=HashingEmbedder(128, min_token_len=3), tracker=tracker, root=tmp_path)


def _model_ids(run) -> set[str]:
    inputs = {m.model_id for m in (run.inputs.model_inputs or [])} if run.inputs else set()
    outputs = {m.model_id for m in (run.outputs.model_outputs or [])} if run.outputs else set()
    return inputs | outputs


def test_eval_and_run_link_dataset_and_config_model(tmp_path: Path, small_dataset: Path, mlflow_uri: str) -> None:
    tracker = MlflowTracker(mlflow_uri)
    corpus = small_dataset / "corpus.jsonl"
    with _workbench(tmp_path, corpus, tracker) as wb:
        first = wb.evaluate(small_dataset, limit=4, metrics=METRICS)
        second = wb.evaluate(small_dataset, limit=4, metrics=METRICS)
        plain = wb.run(small_dataset, limit=4)
        resolved = wb.config.model_dump(mode="json")
    with _workbench(tmp_path, corpus, tracker, concurrency=2) as wb:
        changed = wb.evaluate(small_dataset, limit=4, metrics=METRICS)

    client = MlflowClient(mlflow_uri)
    digest = load_dataset(small_dataset).content_hash
    run = client.get_run(first.run_id)
    [dataset_input] = run.inputs.dataset_inputs
    assert (dataset_input.dataset.name, dataset_input.dataset.digest) == ("small_squad", digest)
    assert {t.key: t.value for t in dataset_input.tags}["mlflow.data.context"] == "evaluation"
    [plain_input] = client.get_run(plain.run_id).inputs.dataset_inputs
    assert {t.key: t.value for t in plain_input.tags}["mlflow.data.context"] == "run"

    model_id = run.data.tags["workbench.model_id"]
    model = client.get_logged_model(model_id)
    expected_hash = config_hash(resolved)
    assert model.name == f"extractive-{expected_hash[:8]}" and model.source_run_id == first.run_id
    assert model.params["retrieval.top_k"] == "4" and model.params["generation.model"] == "extractive"
    assert model.tags["workbench.config_hash"] == expected_hash
    # Metrics are attributed to the model and dataset, which is what its page lists.
    linked = [m for m in model.metrics or [] if m.key == "token_f1"]
    assert linked and all(m.dataset_digest == digest for m in linked)

    # The same config reuses the model (run and eval alike); a changed config gets its own.
    for other in (second, plain):
        other_run = client.get_run(other.run_id)
        assert other_run.data.tags["workbench.model_id"] == model_id and model_id in _model_ids(other_run)
    assert model_id in _model_ids(run)
    changed_id = client.get_run(changed.run_id).data.tags["workbench.model_id"]
    assert changed_id != model_id
    models = client.search_logged_models([run.info.experiment_id])
    assert sorted(m.model_id for m in models) == sorted({model_id, changed_id})


def test_eval_traces_carry_scores_as_assessments(tmp_path: Path, small_dataset: Path, mlflow_uri: str) -> None:
    tracker = MlflowTracker(mlflow_uri)
    with _workbench(tmp_path, small_dataset / "corpus.jsonl", tracker) as wb:
        result = wb.evaluate(small_dataset, limit=6, metrics=METRICS)

    client = MlflowClient(mlflow_uri)
    run = client.get_run(result.run_id)
    model_id = run.data.tags["workbench.model_id"]
    traces = client.search_traces(locations=[run.info.experiment_id], run_id=result.run_id)
    assert len(traces) == len(result.trace_ids) == 6
    by_question = result.frame.set_index("question_id")
    for trace in traces:
        assert trace.info.trace_metadata["mlflow.modelId"] == model_id
        question = trace.info.tags["question_id"]
        got = {a.name: a.value for a in trace.info.assessments}
        expected = {m: float(by_question.loc[question, m]) for m in METRICS}
        assert got == {m: v for m, v in expected.items() if not math.isnan(v)}
        assert all(a.source.source_type == "CODE" for a in trace.info.assessments)
    assert sum(len(t.info.assessments) for t in traces) >= len(traces)  # hit_at_k scores every question


def test_failed_and_missing_scores_are_not_assessments() -> None:
    row = {"a": 0.5, "b": float("nan"), "c": None, "d": 0.0, "d__failed": True, "e": 1.0, "e__failed": False}
    assert row_scores(row, ["a", "b", "c", "d", "e", "absent"]) == {"a": 0.5, "e": 1.0}


def test_config_hash_is_the_sweep_variant_hash(extractive_config: Path) -> None:
    from workbench.sweeps.expand import digest

    resolved = Workbench.from_yaml(extractive_config).config.model_dump(mode="json")
    assert config_hash(resolved) == digest(resolved, 16)


def test_in_memory_tracker_keeps_dataset_model_and_scores(request_states) -> None:
    tracker = InMemoryTracker()
    frame = pd.DataFrame({"question_id": ["q1"], "question": ["<masked>"], "gold_answer": ["x"]})
    dataset, model = DatasetRef("d", "abc", frame), ModelRef("cfg", "0123456789abcdef", {"k": 1})
    run_id = tracker.log_run(
        experiment="e", run_name="r", config_yaml="", params={}, metrics={}, dataset=dataset, model=model
    )
    assert tracker.last.dataset is dataset and tracker.last.model is model and model.name == "cfg-01234567"
    assert tracker.last.tags["workbench.model_id"] == "m-mem-0123456789abcdef"
    tracker.log_traces(
        experiment=None,
        run_id=run_id,
        states=request_states[:2],
        question_ids=["q1", "q2"],
        scores=[{"f1": 0.5, "em": float("nan")}, {}],
    )
    assert [t.scores for t in tracker.traces] == [{"f1": 0.5}, {}]
    assert {t.model_id for t in tracker.traces} == {"m-mem-0123456789abcdef"}
