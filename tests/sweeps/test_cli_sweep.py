"""`python -m workbench sweep`: JSON output, dry runs, one-line errors, and a SIGKILL mid-run
followed by a resume that loses and duplicates nothing."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.sweeps.conftest import write_spec
from workbench.cli import main
from workbench.sweeps.sweep import JOURNAL_FILE

KEY = ["variant", "question_id", "repeat"]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The command line's root is the current folder: keep results and journals out of the repo.
    monkeypatch.chdir(tmp_path)


def test_json_output_names_the_sweep_its_runs_and_its_rows(
    sweep_spec: Path, small_dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = f"sqlite:///{sweep_spec.parent / 'mlflow.db'}"
    code = main(
        ["sweep", str(sweep_spec), "--dataset", str(small_dataset), "--limit", "4", "--json", "--tracking-uri", uri]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["sweep_id"].startswith("sw-") and out["variants"] == 4
    assert out["winner"] and out["status"] == "finished"
    rows = pd.read_parquet(out["rows"])
    assert {"variant", "question_id", "repeat", "answer", "error", "token_f1"} <= set(rows.columns)
    assert len(rows) == 16 and not rows.duplicated(KEY).any()
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    parent = client.get_run(out["mlflow_run_id"])
    assert parent.data.tags["workbench.winner"] == out["winner"]
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert len(children) == 4


def test_dry_run_prints_variants_and_estimates(
    sweep_spec: Path, small_dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sweep", str(sweep_spec), "--dataset", str(small_dataset), "--limit", "5", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "4 variants" in out and "20 model calls" in out
    assert not (sweep_spec.parent / "results").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"axes": {"retrieval.top_k": []}}, "has no values"),
        ({"constraints": [{"metric": "p95", "max": 2}]}, "constraint on unknown metric 'p95'"),
    ],
)
def test_bad_spec_is_one_line_and_exit_2(
    tmp_path: Path, small_dataset: Path, capsys: pytest.CaptureFixture[str], change: dict, message: str
) -> None:
    spec = write_spec(tmp_path, small_dataset / "corpus.jsonl", **change)
    assert main(["sweep", str(spec), "--dataset", str(small_dataset), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def _journal_count(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=5) as db:
            return int(db.execute("SELECT count(*) FROM rows").fetchone()[0])
    except sqlite3.OperationalError:  # the table is not there yet
        return 0


@pytest.mark.integration
@pytest.mark.slow
def test_sigkill_mid_sweep_then_resume_loses_and_duplicates_nothing(tmp_path: Path, small_dataset: Path) -> None:
    spec = write_spec(
        tmp_path,
        small_dataset / "corpus.jsonl",
        axes={"retrieval.top_k": [1, 2], "retrieval.mode": ["bm25", "hybrid"]},
        concurrency=1,
    )
    command = [
        sys.executable,
        "-m",
        "workbench",
        "sweep",
        str(spec),
        "--dataset",
        str(small_dataset),
        "--limit",
        "16",
        "--no-log",
        "--json",
    ]
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    journal = tmp_path / JOURNAL_FILE
    total = 4 * 16
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while _journal_count(journal) < 10 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = _journal_count(journal)
    assert 10 <= killed_at < total

    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    rows = pd.read_parquet(out["rows"])
    assert len(rows) == total and not rows.duplicated(KEY).any()
    assert _journal_count(journal) == total
    variants = rows["variant"].unique()
    questions = rows["question_id"].unique()
    assert len(variants) == 4 and len(questions) == 16
