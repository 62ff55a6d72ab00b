"""The CLI end to end, in-process, and every bad-input case giving one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import assert_one_line_error, run_cli, write_config

pytestmark = pytest.mark.integration


def test_ingest_ask_json_andrun_cli(capsys, extractive_config: Path, small_dataset: Path, mlflow_uri: str) -> None:
    code, out, _ = run_cli(capsys, "ingest", str(extractive_config))
    assert code == 0 and "12" in out
    code, out, _ = run_cli(
        capsys, "ask", str(extractive_config), "Who picked up the remaining four packages?", "--json"
    )
    data = json.loads(out)
    assert code == 0 and "Sky" in data["answer"]
    assert data["sources"] and {"retriever", "generator"} <= set(data["timings"])
    assert data["route"] == "general" and data["models"] == ["extractive"]
    code, out, _ = run_cli(capsys, "ask", str(extractive_config), "Who picked up the remaining four packages?")
    assert code == 0 and "answer:" in out and "sources:" in out and "timings:" in out
    code, out, err = run_cli(capsys, "run", str(extractive_config), "--dataset", str(small_dataset), "--limit", "6")
    assert code == 0, err
    assert "retrieval_hit_rate" in out and "mlflow run:" in out and "mlflow ui" in out


def test_invalid_config_key(capsys, tmp_path: Path, small_dataset: Path) -> None:
    path = write_config(tmp_path, small_dataset / "corpus.jsonl", retrieval={"mode": "hybrid", "top_kk": 3})
    code, _, err = run_cli(capsys, "ask", str(path), "hello")
    assert_one_line_error(code, err, str(path), "unknown key 'retrieval.top_kk'")


def test_missing_config_key(capsys, tmp_path: Path, small_dataset: Path) -> None:
    path = write_config(tmp_path, small_dataset / "corpus.jsonl")
    data = yaml.safe_load(path.read_text())
    del data["generation"]
    path.write_text(yaml.safe_dump(data))
    code, _, err = run_cli(capsys, "ingest", str(path))
    assert_one_line_error(code, err, "missing key 'generation'")


def test_unknown_model_name(capsys, tmp_path: Path, small_dataset: Path) -> None:
    path = write_config(tmp_path, small_dataset / "corpus.jsonl", generation={"model": "gpt-9", "prompt": "plain"})
    code, _, err = run_cli(capsys, "ask", str(path), "hello")
    assert_one_line_error(code, err, "unknown model 'gpt-9'", "extractive")


def test_unknown_route_name(capsys, tmp_path: Path, small_dataset: Path) -> None:
    routing = {"default": "nowhere", "routes": {"general": {"utterances": ["hi"]}}}
    path = write_config(tmp_path, small_dataset / "corpus.jsonl", routing=routing)
    code, _, err = run_cli(capsys, "ask", str(path), "hello")
    assert_one_line_error(code, err, "default route 'nowhere'")


def test_empty_corpus(capsys, tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    path = write_config(tmp_path, empty)
    code, _, err = run_cli(capsys, "ingest", str(path))
    assert_one_line_error(code, err, "empty.jsonl")


def test_malformed_dataset_row(capsys, extractive_config: Path, small_dataset: Path) -> None:
    with (small_dataset / "questions.jsonl").open("a") as fh:
        fh.write(json.dumps({"id": "bad"}) + "\n")
    lineno = len((small_dataset / "questions.jsonl").read_text().splitlines())
    code, _, err = run_cli(capsys, "run", str(extractive_config), "--dataset", str(small_dataset), "--no-log")
    assert_one_line_error(code, err, f"questions.jsonl:{lineno}", "question")


def test_question_over_size_limit(capsys, extractive_config: Path) -> None:
    assert run_cli(capsys, "ingest", str(extractive_config))[0] == 0
    code, _, err = run_cli(capsys, "ask", str(extractive_config), "why " * 600)
    assert_one_line_error(code, err, "2,400", "2,000")


def test_model_endpoint_down(capsys, tmp_path: Path, small_dataset: Path) -> None:
    models = {
        "remote": {
            "provider": "openai_compat",
            "base_url": "http://127.0.0.1:9/v1",
            "model": "anything",
            "retry": {"max_attempts": 2, "base_delay_s": 0.01},
            "timeout_s": 5,
        }
    }
    path = write_config(
        tmp_path, small_dataset / "corpus.jsonl", models=models, generation={"model": "remote", "prompt": "plain"}
    )
    assert run_cli(capsys, "ingest", str(path))[0] == 0
    code, _, err = run_cli(capsys, "ask", str(path), "Who picked up the remaining four packages?")
    assert_one_line_error(code, err, "remote")


def test_unknown_dataset(capsys, extractive_config: Path) -> None:
    code, _, err = run_cli(capsys, "run", str(extractive_config), "--dataset", "nope", "--no-log")
    assert_one_line_error(code, err, "dataset 'nope' not found")
