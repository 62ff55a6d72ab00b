"""Privacy at rest (issue 6, section 3): when an input PII guard masks, the raw PII never reaches
disk or MLflow.

A run, an eval and a feedback comment are made over questions that carry unique PII strings;
then every file the workbench wrote (results parquet and DuckDB, the stage cache, the MLflow
store with its table, params, traces and artifacts, the feedback table) and every log line
is searched for them. Compressed formats are searched as stored *and* decoded, so a string
cannot hide in a parquet page or a DuckDB block.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import write_config
from workbench.session import Workbench
from workbench.testing.embedders import HashingEmbedder
from workbench.tracking import MlflowTracker

pytestmark = pytest.mark.integration

EMAIL = "zq7x-unique@example.com"
PHONE = "415-555-2671"
COMMENT_EMAIL = "feedback-k3p9@example.org"
RAW = (EMAIL, PHONE, COMMENT_EMAIL, "zq7x-unique", "555-2671", "feedback-k3p9")
MASKS = ("<EMAIL_ADDRESS>", "<PHONE_NUMBER>")

DOCS = [
    {"id": "d1", "text": "Sky picked up the remaining four packages of the auction in 2006."},
    {"id": "d2", "text": "The broadcasting monopoly ended in 2007 after a ruling by the commission."},
    {"id": "d3", "text": "The harbour of Hamburg is the largest port in Germany."},
]
QUESTIONS = [
    {
        "id": "q1",
        "question": f"My email is {EMAIL}. Who picked up the remaining four packages?",
        "answer": "Sky",
        "evidence": [{"doc_id": "d1", "start": 0, "end": 3}],
    },
    {
        "id": "q2",
        "question": f"My phone number is {PHONE}. When did the broadcasting monopoly end?",
        "answer": "2007",
        "evidence": [{"doc_id": "d2", "start": 42, "end": 46}],
    },
    {"id": "q3", "question": "What is the largest port in Germany?", "answer": "Hamburg"},
]


@pytest.fixture
def pii_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The input dataset, outside the folder the run writes to (it holds the PII by design)."""
    folder = tmp_path_factory.mktemp("input") / "pii_questions"
    folder.mkdir()
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    (folder / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    return folder


def _decoded(path: Path, scratch: Path) -> str:
    """The content of a structured file as text: parquet rows, every DuckDB or SQLite table.
    Databases are read from a copy, so an open handle in this process cannot block the read."""
    data = path.read_bytes()
    if path.suffix == ".parquet":
        return pd.read_parquet(path).to_json(orient="records", force_ascii=False, date_format="iso")
    if data.startswith(b"SQLite format 3"):
        copy = scratch / f"{len(list(scratch.iterdir()))}.sqlite"
        shutil.copyfile(path, copy)
        for suffix in ("-wal", "-shm"):
            if Path(f"{path}{suffix}").exists():
                shutil.copyfile(f"{path}{suffix}", f"{copy}{suffix}")
        with sqlite3.connect(copy) as con:
            return "\n".join(con.iterdump())
    if path.suffix == ".duckdb":
        import duckdb

        copy = scratch / f"{len(list(scratch.iterdir()))}.duckdb"
        shutil.copyfile(path, copy)
        if Path(f"{path}.wal").exists():
            shutil.copyfile(f"{path}.wal", f"{copy}.wal")
        with duckdb.connect(str(copy)) as con:
            tables = [row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
            return "\n".join(
                con.execute(f'SELECT * FROM "{t}"').df().to_json(orient="records", date_format="iso") for t in tables
            )
    return ""


def _everything_written(root: Path, scratch: Path) -> dict[Path, str]:
    """Every file under `root`: its bytes (as UTF-8, and as Latin-1 for binary files) and, for
    structured files, their decoded content."""
    out: dict[Path, str] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        out[path] = "\n".join([data.decode("utf-8", errors="replace"), data.decode("latin-1"), _decoded(path, scratch)])
    return out


def test_raw_pii_never_reaches_disk_mlflow_or_logs(
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    pii_dataset: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    config = write_config(
        tmp_path,
        pii_dataset / "corpus.jsonl",
        guardrails={"input": [{"check": "pii", "action": "mask"}], "output": []},
    )
    tracker = MlflowTracker(tmp_path / "mlflow.db")
    caplog.set_level(logging.DEBUG, logger="workbench")
    caplog.set_level(logging.INFO)
    with Workbench.from_yaml(config, embedder=HashingEmbedder(), tracker=tracker, root=tmp_path) as wb:
        run = wb.run(pii_dataset)
        evaluation = wb.evaluate(pii_dataset)
        assert run.run_id and evaluation.run_id and len(evaluation.trace_ids) == len(QUESTIONS)
        wb.feedback(evaluation.run_id, "q1", "down", f"wrong answer, write to {COMMENT_EMAIL} about it")
        wb.feedback(run.run_id, "q2", "up", f"thanks, my phone number is {PHONE}")

    written = _everything_written(tmp_path, tmp_path_factory.mktemp("scratch"))
    kinds = {p.suffix for p in written}
    assert {".parquet", ".duckdb", ".db", ".json", ".yaml"} <= kinds, kinds  # the scan saw every sink
    leaks = sorted(
        {f"{path.relative_to(tmp_path)}: {raw}" for path, text in written.items() for raw in RAW if raw in text}
    )
    captured = capsys.readouterr()
    logs = "\n".join([caplog.text, captured.out, captured.err])
    leaks += [f"logs: {raw}" for raw in RAW if raw in logs]
    assert not leaks, "raw PII was written:\n" + "\n".join(leaks)

    # Not vacuous: the masked text is what was written, to results, MLflow and feedback alike.
    everything = "\n".join(written.values())
    for mask in MASKS:
        assert mask in everything, mask
    mlflow_db = written[tmp_path / "mlflow.db"]
    assert "<EMAIL_ADDRESS>" in mlflow_db and "<PHONE_NUMBER>" in mlflow_db  # table, traces, feedback
    results = "\n".join(text for path, text in written.items() if path.suffix == ".parquet")
    assert "<EMAIL_ADDRESS>. Who picked up the remaining four packages?" in results
    feedback = written[tmp_path / "results" / "feedback.duckdb"]
    assert "write to <EMAIL_ADDRESS> about it" in feedback and "my phone number is <PHONE_NUMBER>" in feedback
