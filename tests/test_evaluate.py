"""`eval`, `score` and `compare` end to end, and their bad-input cases (issue 3)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.conftest import assert_one_line_error, run_cli, write_config
from workbench.core.errors import ConfigError
from workbench.session import Workbench

pytestmark = pytest.mark.integration

ROWS = [
    {
        "question": "Who bought four packages?",
        "answer": "Sky",
        "contexts": ["Sky picked up the remaining four."],
        "reference": "Sky",
    },
    {
        "question": "When did it end?",
        "answer": "in 1990",
        "contexts": ["The monopoly ended in 2007."],
        "reference": "2007",
    },
]


def _rows_file(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_eval_logs_cis_traces_and_prompts(capsys, extractive_config: Path, small_dataset: Path, mlflow_uri) -> None:
    code, out, err = run_cli(capsys, "eval", str(extractive_config), "--dataset", str(small_dataset), "--limit", "8")
    assert code == 0, err
    assert "hit_at_k" in out and "ci_low" in out and "8 traces" in out
    run_id = out.split("mlflow run: ")[1].split()[0]
    client = MlflowClient(mlflow_uri)
    run = client.get_run(run_id)
    metrics = run.data.metrics
    assert metrics["token_f1_ci_low"] <= metrics["token_f1"] <= metrics["token_f1_ci_high"]
    assert metrics["hit_at_k_n"] > 0 and "latency_s_p95" in metrics and "stage_generator_s_p50" in metrics
    assert run.data.tags["workbench.kind"] == "eval" and run.data.tags["dataset"] == "small_squad"
    assert any(k.startswith("prompt.") for k in run.data.tags)
    traces = client.search_traces(run_id=run_id, locations=[run.info.experiment_id])
    assert len(traces) == 8


def test_eval_reuses_cached_answers(extractive_config: Path, small_dataset: Path) -> None:
    wb = Workbench.from_yaml(extractive_config)
    first = wb.evaluate(small_dataset, limit=5, log=False)
    again = wb.evaluate(small_dataset, limit=5, log=False)
    assert first.metrics["stage_cache_hit_rate"] < 1 and again.metrics["stage_cache_hit_rate"] == 1.0
    pd.testing.assert_series_equal(first.frame["answer"], again.frame["answer"])


def test_score_cli_writes_columns(capsys, tmp_path: Path) -> None:
    out_file = tmp_path / "scored.parquet"
    code, out, err = run_cli(
        capsys, "score", str(_rows_file(tmp_path, ROWS)), "--metrics", "exact_match,token_f1", "--out", str(out_file)
    )
    assert code == 0, err
    scored = pd.read_parquet(out_file)
    assert scored["exact_match"].tolist() == [1.0, 0.0] and "question" in scored


def test_score_rows_missing_fields(capsys, tmp_path: Path) -> None:
    path = _rows_file(tmp_path, [ROWS[0], {"question": "q", "contexts": []}])
    code, _, err = run_cli(capsys, "score", str(path))
    assert_one_line_error(code, err, "rows.jsonl:2", "answer")


def test_score_unknown_metric_and_judge(capsys, tmp_path: Path) -> None:
    path = _rows_file(tmp_path, ROWS)
    code, _, err = run_cli(capsys, "score", str(path), "--metrics", "vibes")
    assert_one_line_error(code, err, "vibes", "token_f1")
    code, _, err = run_cli(capsys, "score", str(path), "--metrics", "faithfulness", "--judge", "oracle")
    assert_one_line_error(code, err, "unknown judge 'oracle'", "smollm2")
    code, _, err = run_cli(capsys, "score", str(path), "--metrics", "faithfulness")
    assert_one_line_error(code, err, "--judge")


def test_judge_endpoint_down(capsys, tmp_path: Path, small_dataset: Path) -> None:
    models = {
        "extractive": {"provider": "extractive"},
        "remote_judge": {
            "provider": "openai_compat",
            "base_url": "http://127.0.0.1:9/v1",
            "model": "judge",
            "retry": {"max_attempts": 1},
            "timeout_s": 5,
        },
    }
    config = write_config(tmp_path, small_dataset / "corpus.jsonl", models=models)
    code, _, err = run_cli(
        capsys,
        "score",
        str(_rows_file(tmp_path, ROWS)),
        "--config",
        str(config),
        "--metrics",
        "faithfulness",
        "--judge",
        "remote_judge",
    )
    assert_one_line_error(code, err, "127.0.0.1:9")


def test_empty_dataset(capsys, extractive_config: Path, small_dataset: Path) -> None:
    (small_dataset / "questions.jsonl").write_text("")
    code, _, err = run_cli(capsys, "eval", str(extractive_config), "--dataset", str(small_dataset), "--no-log")
    assert_one_line_error(code, err, "questions.jsonl: no rows")


def test_compare_files_and_refuse_different_datasets(capsys, tmp_path: Path) -> None:
    a = pd.DataFrame(
        {"question_id": ["q1", "q2", "q3"], "question": ["a", "b", "c"], "token_f1": [0.1, 0.5, 0.2], "dataset": "d1"}
    )
    b = a.assign(token_f1=[0.4, 0.5, 0.9])
    a.to_parquet(tmp_path / "a.parquet")
    b.to_parquet(tmp_path / "b.parquet")
    code, out, err = run_cli(capsys, "compare", str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet"))
    assert code == 0, err
    assert "token_f1" in out and "2/0/1" in out
    b.assign(dataset="d2").to_parquet(tmp_path / "c.parquet")
    code, _, err = run_cli(capsys, "compare", str(tmp_path / "a.parquet"), str(tmp_path / "c.parquet"))
    assert_one_line_error(code, err, "different datasets")
    b.iloc[:2].to_parquet(tmp_path / "d.parquet")
    code, _, err = run_cli(capsys, "compare", str(tmp_path / "a.parquet"), str(tmp_path / "d.parquet"))
    assert_one_line_error(code, err, "different questions")


def test_unknown_judge_from_api(extractive_config: Path, small_dataset: Path) -> None:
    with pytest.raises(ConfigError, match="unknown judge"):
        Workbench.from_yaml(extractive_config).evaluate(small_dataset, judge="nope", log=False)


def test_feedback_on_a_traced_question_and_new_dataset_version(
    extractive_config: Path, small_dataset: Path, mlflow_uri: str, tmp_path: Path
) -> None:
    from workbench.core.dataset import load_dataset
    from workbench.tracking.feedback import load_feedback

    wb = Workbench.from_yaml(extractive_config, root=tmp_path)
    result = wb.evaluate(small_dataset, limit=4)
    qid = result.frame["question_id"].iloc[0]
    record = wb.feedback(result.run_id, qid, "down", "answer: Sky")
    assert record.trace_id is not None
    trace = MlflowClient(mlflow_uri).get_trace(record.trace_id)
    assert any(a.name == "user_feedback" for a in trace.info.assessments)
    stored = load_feedback(tmp_path / "results" / "feedback.duckdb", run_id=result.run_id)
    assert stored["thumbs"].tolist() == ["down"]
    folder = wb.feedback_dataset(result.run_id, small_dataset, "small_squad_v2")
    new = load_dataset(folder)
    assert [q.id for q in new.questions] == [qid] and new.questions[0].answer == "Sky"


def test_config_evaluation_section_sets_metrics_and_checks_judge(
    tmp_path: Path, small_dataset: Path, extractive_config: Path
) -> None:
    import yaml

    data = yaml.safe_load(extractive_config.read_text())
    data["evaluation"] = {"metrics": ["hit_at_k", "token_f1"], "k": 3}
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump(data))
    result = Workbench.from_yaml(path).evaluate(small_dataset, limit=4, log=False)
    assert result.scores["metric"].tolist() == ["hit_at_k", "token_f1"]
    data["evaluation"] = {"judge": "gpt-judge"}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="unknown model 'gpt-judge' in evaluation.judge"):
        Workbench.from_yaml(path)
