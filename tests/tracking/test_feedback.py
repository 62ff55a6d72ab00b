from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from workbench.core.dataset import load_dataset
from workbench.core.errors import DatasetError, TrackingError, WorkbenchError
from workbench.core.state import RequestState
from workbench.testing.tracker import InMemoryTracker
from workbench.tracking import (
    DatasetExists,
    InvalidFeedback,
    MlflowTracker,
    feedback_to_dataset,
    load_feedback,
    log_request_traces,
    record_feedback,
)
from workbench.tracking._feedback_dataset import PROVENANCE_FILE, correction


@pytest.fixture
def dataset_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "datasets" / "toy"
    folder.mkdir(parents=True)
    docs = [{"id": "d1", "text": "Paris is the capital of France."}, {"id": "d2", "text": "Bern is in Switzerland."}]
    questions = [
        {
            "id": "q1",
            "question": "Capital of France?",
            "answer": "Paris",
            "evidence": [{"doc_id": "d1", "start": 0, "end": 5}],
        },
        {"id": "q2", "question": "Where is Bern?", "topic": "geo"},
        {"id": "q3", "question": "Capital of Spain?"},
        {"id": "q4", "question": "Not asked about"},
    ]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (folder / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    return folder


@pytest.fixture
def results() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "question_id": ["q1", "q2", "q3", "q4"],
            "answer": ["Paris.", "In Switzerland", "Barcelona", None],
            "run_id": ["run-1"] * 4,
        }
    )


def test_invalid_thumbs_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidFeedback, match="^thumbs must be 'up' or 'down', got 'sideways'$") as info:
        record_feedback(duckdb_path=tmp_path / "f.duckdb", run_id="r", question_id="q", thumbs="sideways")  # type: ignore[arg-type]
    assert isinstance(info.value, WorkbenchError)
    assert not (tmp_path / "f.duckdb").exists()


def test_feedback_is_stored_in_duckdb(tmp_path: Path) -> None:
    db = tmp_path / "results" / "results.duckdb"
    assert load_feedback(db).empty and list(load_feedback(db).columns)[:2] == ["feedback_id", "created_at"]
    first = record_feedback(duckdb_path=db, run_id="r1", question_id="q1", thumbs="up", user="ana")
    record_feedback(duckdb_path=db, run_id="r2", question_id="q1", thumbs="down", comment="answer: Lyon")
    frame = load_feedback(db)
    assert list(frame["thumbs"]) == ["up", "down"]
    assert frame.loc[0, "feedback_id"] == first.feedback_id and frame.loc[0, "user"] == "ana"
    assert frame.loc[1, "comment"] == "answer: Lyon" and pd.isna(frame.loc[1, "trace_id"])
    assert list(load_feedback(db, run_id="r2")["question_id"]) == ["q1"]


def test_feedback_reaches_the_in_memory_tracker(tmp_path: Path, request_states: list[RequestState]) -> None:
    tracker = InMemoryTracker()
    [trace_id] = tracker.log_traces(experiment="e", run_id=None, states=request_states[:1], question_ids=["q1"])
    record = record_feedback(
        duckdb_path=tmp_path / "f.duckdb",
        run_id="r",
        question_id="q1",
        thumbs="down",
        trace_id=trace_id,
        tracker=tracker,
    )
    assert tracker.feedback[0].value is False and record.assessment_id == tracker.feedback[0].feedback_id
    # MLflow fails first: nothing is stored.
    with pytest.raises(TrackingError, match="not found"):
        record_feedback(
            duckdb_path=tmp_path / "f.duckdb",
            run_id="r",
            question_id="q2",
            thumbs="up",
            trace_id="tr-x",
            tracker=tracker,
        )
    assert len(load_feedback(tmp_path / "f.duckdb")) == 1


def test_correction_comment() -> None:
    assert correction("answer: Lyon") == "Lyon"
    assert correction("  Answer :  the city of Lyon \n") == "the city of Lyon"
    assert correction("wrong, it is Lyon") is None and correction("") is None


def test_feedback_to_dataset(tmp_path: Path, dataset_dir: Path, results: pd.DataFrame) -> None:
    db = tmp_path / "f.duckdb"
    record_feedback(duckdb_path=db, run_id="run-1", question_id="q1", thumbs="up")  # has a reference: kept
    record_feedback(duckdb_path=db, run_id="run-1", question_id="q2", thumbs="down")
    record_feedback(duckdb_path=db, run_id="run-1", question_id="q2", thumbs="up")  # latest wins: run answer
    record_feedback(duckdb_path=db, run_id="run-1", question_id="q3", thumbs="down", comment="answer: Madrid")
    record_feedback(duckdb_path=db, run_id="other-run", question_id="q4", thumbs="up")  # another run: ignored

    out = feedback_to_dataset(db, results, dataset_dir, tmp_path / "datasets", name="toy-fb1")
    assert out == tmp_path / "datasets" / "toy-fb1"
    ds = load_dataset(out)
    answers = {q.id: q.answer for q in ds.questions}
    assert answers == {"q1": "Paris", "q2": "In Switzerland", "q3": "Madrid"}
    assert ds.questions[0].evidence[0].doc_id == "d1"
    assert (out / "corpus.jsonl").read_bytes() == (dataset_dir / "corpus.jsonl").read_bytes()
    rows = {r["id"]: r for r in map(json.loads, (out / "questions.jsonl").read_text().splitlines())}
    assert rows["q2"]["topic"] == "geo"  # fields the loader does not know survive
    assert rows["q2"]["feedback"]["thumbs"] == "up" and rows["q2"]["feedback"]["reference"] == "run_answer"
    assert rows["q3"]["feedback"] | {"created_at": None} == {
        "thumbs": "down",
        "comment": "answer: Madrid",
        "user": "user",
        "run_id": "run-1",
        "trace_id": None,
        "created_at": None,
        "run_answer": "Barcelona",
        "reference": "comment",
    }
    assert json.loads((out / PROVENANCE_FILE).read_text())["questions"] == 3
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp folder left

    with pytest.raises(DatasetExists, match="already exists"):
        feedback_to_dataset(db, results, dataset_dir, tmp_path / "datasets", name="toy-fb1")


def test_feedback_to_dataset_reads_a_parquet_and_needs_feedback(
    tmp_path: Path, dataset_dir: Path, results: pd.DataFrame
) -> None:
    parquet = tmp_path / "results.parquet"
    results.to_parquet(parquet)
    db = tmp_path / "f.duckdb"
    with pytest.raises(DatasetError, match="no feedback"):
        feedback_to_dataset(db, parquet, dataset_dir, tmp_path / "out", name="v2")
    assert not (tmp_path / "out" / "v2").exists()
    record_feedback(duckdb_path=db, run_id="run-1", question_id="q3", thumbs="up")
    out = feedback_to_dataset(db, parquet, dataset_dir, tmp_path / "out", name="v2")
    assert [q.answer for q in load_dataset(out).questions] == ["Barcelona"]
    with pytest.raises(DatasetError, match="invalid dataset name"):
        feedback_to_dataset(db, parquet, dataset_dir, tmp_path / "out", name="../escape")


# -- against a real SQLite store ----------------------------------------------------------------


@pytest.mark.integration
def test_feedback_appears_on_the_mlflow_trace(tmp_path: Path, request_states: list[RequestState]) -> None:
    tracker = MlflowTracker(tmp_path / "mlflow.db")
    run_id = tracker.log_run(experiment="e", run_name="r", config_yaml="", params={}, metrics={})
    trace_ids = log_request_traces(tracker, "e", run_id, request_states, ["q1", "q2", "q3"])
    db = tmp_path / "results.duckdb"
    record = record_feedback(
        duckdb_path=db,
        run_id=run_id,
        question_id="q2",
        thumbs="down",
        comment="answer: forty-two",
        trace_id=trace_ids[1],
        tracker=tracker,
        user="ana",
    )
    assert record.assessment_id
    [assessment] = tracker.client.get_trace(trace_ids[1], display=False).info.assessments
    assert assessment.name == "user_feedback" and assessment.value is False
    assert assessment.rationale == "answer: forty-two"
    assert assessment.source.source_type == "HUMAN" and assessment.source.source_id == "ana"
    assert assessment.metadata["question_id"] == "q2"
    stored = load_feedback(db, run_id=run_id)
    assert list(stored["assessment_id"]) == [record.assessment_id]
    assert list(stored["trace_id"]) == [trace_ids[1]]

    # A plain MlflowClient works too; an unknown trace is a TrackingError and stores nothing.
    record_feedback(
        duckdb_path=db, run_id=run_id, question_id="q1", thumbs="up", trace_id=trace_ids[0], tracker=tracker.client
    )
    assert tracker.client.get_trace(trace_ids[0], display=False).info.assessments[0].value is True
    with pytest.raises(TrackingError, match="could not log feedback"):
        record_feedback(
            duckdb_path=db, run_id=run_id, question_id="q3", thumbs="up", trace_id="tr-" + "0" * 32, tracker=tracker
        )
    assert len(load_feedback(db)) == 2
