from __future__ import annotations

import ast
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


def test_comment_is_masked_before_anything_is_stored(tmp_path: Path, request_states: list[RequestState]) -> None:
    tracker = InMemoryTracker()
    [trace_id] = tracker.log_traces(experiment="e", run_id=None, states=request_states[:1], question_ids=["q1"])
    db = tmp_path / "f.duckdb"
    raw = "wrong, mail me at zq7x@example.com"
    record = record_feedback(
        duckdb_path=db,
        run_id="r",
        question_id="q1",
        thumbs="down",
        comment=raw,
        trace_id=trace_id,
        tracker=tracker,
        mask=lambda text: text.replace("zq7x@example.com", "<EMAIL_ADDRESS>"),
    )
    assert record.comment == "wrong, mail me at <EMAIL_ADDRESS>"
    assert list(load_feedback(db)["comment"]) == [record.comment]
    assert tracker.feedback[0].rationale == record.comment
    assert b"zq7x@example.com" not in db.read_bytes()


def test_a_failing_mask_stores_nothing(tmp_path: Path) -> None:
    def broken(text: str) -> str:
        raise WorkbenchError("PII analyzer unavailable")

    with pytest.raises(WorkbenchError, match="PII analyzer"):
        record_feedback(
            duckdb_path=tmp_path / "f.duckdb", run_id="r", question_id="q", thumbs="up", comment="x", mask=broken
        )
    assert load_feedback(tmp_path / "f.duckdb").empty


def _imported_modules(module: str) -> set[str]:
    """Every module a `workbench.tracking` module imports, at the top or inside a function."""
    path = Path(__file__).resolve().parents[2] / "workbench" / "tracking" / f"{module}.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found


def test_feedback_modules_do_not_import_each_other_in_a_cycle() -> None:
    # `feedback` re-exports `feedback_to_dataset`; both read the table through `_feedback_store`.
    assert "workbench.tracking._feedback_dataset" in _imported_modules("feedback")
    assert "workbench.tracking.feedback" not in _imported_modules("_feedback_dataset")
    assert not {"workbench.tracking.feedback", "workbench.tracking._feedback_dataset"} & _imported_modules(
        "_feedback_store"
    )


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

    out = feedback_to_dataset(db, results, dataset_dir, tmp_path / "datasets" / "toy-fb1", name="toy-fb1")
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
        feedback_to_dataset(db, results, dataset_dir, tmp_path / "datasets" / "toy-fb1")


def test_feedback_to_dataset_reads_a_parquet_and_needs_feedback(
    tmp_path: Path, dataset_dir: Path, results: pd.DataFrame
) -> None:
    parquet = tmp_path / "results.parquet"
    results.to_parquet(parquet)
    db = tmp_path / "f.duckdb"
    with pytest.raises(DatasetError, match="no feedback"):
        feedback_to_dataset(db, parquet, dataset_dir, tmp_path / "out" / "v2")
    assert not (tmp_path / "out" / "v2").exists()
    record_feedback(duckdb_path=db, run_id="run-1", question_id="q3", thumbs="up")
    out = feedback_to_dataset(db, parquet, dataset_dir, tmp_path / "out" / "v2")
    assert out == tmp_path / "out" / "v2" and not (out / "v2").exists()
    assert [q.answer for q in load_dataset(out).questions] == ["Barcelona"]
    with pytest.raises(DatasetError, match="invalid dataset name"):
        feedback_to_dataset(db, parquet, dataset_dir, tmp_path / "out" / ".hidden")
    with pytest.raises(DatasetError, match="differs from its folder"):
        feedback_to_dataset(db, parquet, dataset_dir, tmp_path / "out" / "v3", name="../escape")


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


# -- through the session ------------------------------------------------------------------------


@pytest.mark.integration
def test_workbench_feedback_dataset_writes_datasets_name_and_runs(tmp_path: Path, dataset_dir: Path) -> None:
    from tests.conftest import write_config
    from workbench.session import Workbench
    from workbench.testing.embedders import HashingEmbedder

    config = write_config(tmp_path, dataset_dir / "corpus.jsonl", guardrails={"input": [], "output": []})
    tracker = InMemoryTracker()
    with Workbench.from_yaml(config, embedder=HashingEmbedder(), tracker=tracker, root=tmp_path) as wb:
        run = wb.run(dataset_dir)
        assert run.run_id is not None
        wb.feedback(run.run_id, "q3", "down", "answer: Madrid")
        wb.feedback(run.run_id, "q1", "up")
        out = wb.feedback_dataset(run.run_id, dataset_dir, "toy-v2")
        assert out == tmp_path / "datasets" / "toy-v2"
        assert sorted(p.name for p in out.iterdir()) == ["corpus.jsonl", "provenance.json", "questions.jsonl"]
        dataset = load_dataset(out)
        assert {q.id: q.answer for q in dataset.questions} == {"q1": "Paris", "q3": "Madrid"}
        again = wb.run("toy-v2")  # by name, from the session's datasets/ folder
    assert sorted(again.frame["question_id"]) == ["q1", "q3"] and again.frame["error"].isna().all()
    assert tracker.last.tags["dataset"] == "toy-v2"
