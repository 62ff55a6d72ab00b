"""`python -m workbench drift`: a real request log written by `RequestLog`, a run's results
parquet written from real request states, a dataset folder; the report folder, MLflow, and
one-line errors. The hashing embedder stands in for MiniLM except in the integration test."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO, assert_one_line_error, run_cli
from workbench.core.dataset import Question
from workbench.core.state import GuardVerdict, RequestState, StageTiming
from workbench.drift_command import drift
from workbench.runner import question_row
from workbench.serve.request_log import LogEntry, RequestLog
from workbench.testing.embedders import HashingEmbedder


def _questions(dataset: str, n: int) -> list[str]:
    lines = (REPO / "datasets" / dataset / "questions.jsonl").read_text().splitlines()
    return [json.loads(line)["question"] for line in lines[:n]]


def _state(question: str, *, route: str, attack: bool, seconds: float) -> RequestState:
    verdict = GuardVerdict(stage="input", check="attack", triggered=attack, action="block")
    return RequestState(
        query=question,
        route=route,
        route_score=0.7,
        answer=None if attack else "an answer",
        blocked=attack,
        verdicts=(verdict,),
        timings=(StageTiming(stage="generator", seconds=seconds),),
    )


def _traffic(questions: list[str], *, chat_every: int, attack_every: int, seconds: float) -> list[RequestState]:
    return [
        _state(q, route="chat" if i % chat_every == 0 else "docs", attack=i % attack_every == 0, seconds=seconds)
        for i, q in enumerate(questions)
    ]


def _write_log(folder: Path, states: list[RequestState], *, days_ago: float) -> None:
    log = RequestLog(folder)
    when = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=days_ago)
    for n, state in enumerate(states):
        entry = LogEntry(request_id=f"{days_ago}-{n}", endpoint="/v1/ask", status=200, question=None)
        entry.created_at = when + timedelta(seconds=n)
        entry.latency_s = state.timings[0].seconds
        if state.blocked:
            entry.status, entry.error = 400, "blocked by attack"
        log.record(entry.with_state(state, answer=not state.blocked))
    log.close()


@pytest.fixture
def request_log(tmp_path: Path) -> Path:
    """Three days ago: squad questions, few chats, a few attacks. The last hour: knowledge-
    conflict questions, half chats, many attacks, slower."""
    folder = tmp_path / "var" / "requests"
    _write_log(folder, _traffic(_questions("squad_disfl", 80), chat_every=10, attack_every=20, seconds=0.5), days_ago=3)
    recent = _traffic(_questions("knowledge_conflicts", 60), chat_every=2, attack_every=3, seconds=0.9)
    _write_log(folder, recent, days_ago=0.01)
    return folder


@pytest.fixture
def run_parquet(tmp_path: Path) -> Path:
    """A run's results as the runner writes a row, over real request states."""
    questions = [Question(id=f"q{n}", question=q) for n, q in enumerate(_questions("squad_disfl", 40))]
    states = _traffic([q.question for q in questions], chat_every=5, attack_every=10, seconds=0.4)
    rows = [question_row(q, s, s.timings[0].seconds, None) for q, s in zip(questions, states, strict=True)]
    path = tmp_path / "results" / "run.parquet"
    path.parent.mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(path)
    return path


def test_the_last_day_of_a_request_log_against_the_days_before(
    request_log: Path, tmp_path: Path, mlflow_uri: str
) -> None:
    from mlflow import MlflowClient

    from workbench.tracking import MlflowTracker

    out = tmp_path / "report"
    report = drift(
        str(request_log),
        str(request_log),
        embedder=HashingEmbedder(),
        out=out,
        since="24h",
        reference_until="24h",
        tracker=MlflowTracker(mlflow_uri),
        permutations=200,
    )
    data = json.loads((out / "report.json").read_text())
    assert data["reference"] == {"source": str(request_log), "kind": "request_log", "rows": 80}
    assert data["current"]["rows"] == 60 and data["window"] == {"since": "24h", "reference_until": "24h"}
    tests = {t["name"]: t for t in data["tests"]}
    # Blocked requests count: they are where the attack check triggered.
    assert tests["guard.attack"]["detail"]["reference"]["True"] == pytest.approx(4 / 80)
    assert tests["guard.attack"]["detail"]["current"]["True"] == pytest.approx(20 / 60)
    assert tests["route"]["detail"]["current"] == {"chat": 0.5, "docs": 0.5}
    assert {"embeddings", "outcome.blocked", "metric.latency_s", "metric.question_chars"} <= set(tests)
    assert "metric.pid" not in tests and "metric.status" not in tests
    for name in ("embeddings", "route", "guard.attack", "metric.latency_s"):
        assert tests[name]["flagged"] and tests[name]["p_adjusted"] < 0.05, tests[name]
    assert data["flagged"] and report.flagged and "route" in data["flagged_tests"]
    assert {"p_value", "p_adjusted", "effect", "statistic", "method", "n_reference", "n_current"} <= set(tests["route"])
    assert {p.name for p in out.iterdir()} == {
        "report.json",
        "report.md",
        "embeddings.png",
        "shares.png",
        "metrics.png",
    }
    assert "**Drift flagged**" in (out / "report.md").read_text()

    run = MlflowClient(mlflow_uri).get_run(report.run_id)
    assert run.data.metrics["drift_flagged"] == 1.0
    assert run.data.metrics["route.p_adjusted"] == pytest.approx(tests["route"]["p_adjusted"])
    assert run.data.params["since"] == "24h" and run.data.tags["workbench.kind"] == "drift"
    artifacts = {a.path for a in MlflowClient(mlflow_uri).list_artifacts(report.run_id)}
    assert {"report.json", "report.md", "embeddings.png"} <= artifacts


def test_new_traffic_like_the_old_flags_nothing(request_log: Path, tmp_path: Path) -> None:
    recent = tmp_path / "other" / "requests"
    same_kind = _traffic(_questions("squad_disfl", 160)[80:], chat_every=10, attack_every=20, seconds=0.5)
    _write_log(recent, same_kind, days_ago=0.01)
    report = drift(
        str(request_log),
        str(recent),
        embedder=HashingEmbedder(),
        out=tmp_path / "r",
        reference_until="24h",
        since="24h",
        permutations=200,
    )
    assert not report.flagged and report.data["flagged_tests"] == []
    assert [t.name for t in report.tests][:3] == ["embeddings", "route", "guard.attack"]


def test_a_run_against_a_dataset_compares_what_both_have(
    run_parquet: Path, small_dataset: Path, tmp_path: Path
) -> None:
    report = drift(
        str(run_parquet), str(small_dataset), embedder=HashingEmbedder(), out=tmp_path / "r", permutations=100
    )
    assert [t.name for t in report.tests] == ["embeddings", "metric.question_chars"]
    assert {s["name"] for s in report.data["skipped"]} == {"route", "guard"}
    assert report.data["reference"]["kind"] == "run" and report.data["current"]["kind"] == "dataset"
    # Both are squad_disfl questions: the same population.
    assert not report.tests[0].flagged


def test_two_runs_compare_routes_guards_and_chosen_metrics(run_parquet: Path, tmp_path: Path) -> None:
    report = drift(
        str(run_parquet),
        str(run_parquet),
        embedder=HashingEmbedder(),
        out=tmp_path / "r",
        metrics=["latency_s"],
        permutations=50,
    )
    names = [t.name for t in report.tests]
    assert names[:3] == ["embeddings", "route", "guard.attack"] and names[-1] == "metric.latency_s"
    assert not report.flagged


def test_a_runs_results_duckdb_reads_like_its_parquet(run_parquet: Path, tmp_path: Path) -> None:
    from workbench.tracking.results import append_duckdb

    results = tmp_path / "results.duckdb"
    append_duckdb(pd.read_parquet(run_parquet), results)
    report = drift(str(run_parquet), str(results), embedder=HashingEmbedder(), out=tmp_path / "r", permutations=50)
    tests = {t.name: t for t in report.tests}
    assert tests["guard.attack"].detail["current"] == tests["guard.attack"].detail["reference"]
    assert tests["route"].p_value == pytest.approx(1.0) and not report.flagged


def test_the_exit_code_says_drift_only_when_asked(
    request_log: Path,
    run_parquet: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import workbench.drift_command

    monkeypatch.setattr(workbench.drift_command, "_embedder", lambda config: HashingEmbedder())
    windows = ["--since", "24h", "--reference-until", "24h", "--permutations", "100", "--out", str(tmp_path / "a")]
    code, out, _ = run_cli(capsys, "drift", str(request_log), str(request_log), *windows)
    assert code == 0 and "DRIFT: route" in out
    code, out, _ = run_cli(capsys, "drift", str(request_log), str(request_log), *windows, "--fail-on-drift")
    assert code == 1 and "DRIFT" in out
    same = ["--fail-on-drift", "--permutations", "100", "--out", str(tmp_path / "b")]
    code, out, _ = run_cli(capsys, "drift", str(run_parquet), str(run_parquet), *same)
    assert code == 0 and "no drift flagged" in out and (tmp_path / "b" / "report.md").is_file()


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["no/such/run.parquet", "squad_disfl"], ["no/such/run.parquet", "no such file"]),
        (["squad_disfl", "squad_disfl", "--since", "soon"], ["'soon'", "duration"]),
        (["squad_disfl", "squad_disfl", "--since", "24h"], ["request log"]),
        (["squad_disfl", "squad_disfl", "--metrics", "latency_s"], ["latency_s", "question_chars"]),
        (["squad_disfl", "squad_disfl", "--threshold", "5"], ["--threshold"]),
        (["squad_disfl", "squad_disfl", "--min-rows", "5000"], ["1997 questions", "--min-rows"]),
        (["squad_disfl", "README.md"], ["README.md", "not a dataset folder"]),
    ],
)
def test_bad_inputs_are_one_line(
    argv: list[str], needles: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "drift", *argv, "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, *needles)
    assert not (tmp_path / "r").exists()


def test_an_empty_window_is_one_line(request_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "drift", str(request_log), str(request_log), "--since", "1s", "--out", str(tmp_path))
    assert_one_line_error(code, err, "no questions to compare in that time window")


@pytest.mark.integration
@pytest.mark.slow
def test_python_m_workbench_drift_with_the_real_embedder(request_log: Path, tmp_path: Path, mlflow_uri: str) -> None:
    out = tmp_path / "report"
    argv = [str(request_log), str(request_log), "--since", "24h", "--reference-until", "24h", "--out", str(out)]
    cmd = [sys.executable, "-m", "workbench", "drift", *argv, "--tracking-uri", mlflow_uri, "--fail-on-drift"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr  # drift is flagged, and asked to fail on it
    assert "DRIFT: embeddings" in done.stdout and "MLflow run" in done.stdout
    data = json.loads((out / "report.json").read_text())
    assert data["embedder"] != "HashingEmbedder" and data["tests"][0]["p_value"] < 0.01
