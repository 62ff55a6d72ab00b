"""The CLI end to end, in-process, and every bad-input case giving one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import write_config
from workbench.cli import main

pytestmark = pytest.mark.integration


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_ingest_ask_json_and_run(capsys, extractive_config: Path, small_dataset: Path, mlflow_uri: str) -> None:
    code, out, _ = _run(capsys, "ingest", str(extractive_config))
    assert code == 0 and "12" in out
    code, out, _ = _run(capsys, "ask", str(extractive_config), "Who picked up the remaining four packages?", "--json")
    data = json.loads(out)
    assert code == 0 and "Sky" in data["answer"]
    assert data["sources"] and {"retriever", "generator"} <= set(data["timings"])
    assert data["route"] == "general" and data["models"] == ["extractive"]
    code, out, _ = _run(capsys, "ask", str(extractive_config), "Who picked up the remaining four packages?")
    assert code == 0 and "answer:" in out and "sources:" in out and "timings:" in out
    code, out, err = _run(capsys, "run", str(extractive_config), "--dataset", str(small_dataset), "--limit", "6")
    assert code == 0, err
    assert "retrieval_hit_rate" in out and "mlflow run:" in out and "mlflow ui" in out


def test_invalid_config_key(capsys, tmp_path: Path, small_dataset: Path) -> None:
    path = write_config(tmp_path, small_dataset / "corpus.jsonl", retrieval={"mode": "hybrid", "top_kk": 3})
    code, _, err = _run(capsys, "ask", str(path), "hello")
    _one_line_error(code, err, str(path), "unknown key 'retrieval.top_kk'")


def test_missing_config_key(capsys, tmp_path: Path, small_dataset: Path) -> None:
    path = write_config(tmp_path, small_dataset / "corpus.jsonl")
    data = yaml.safe_load(path.read_text())
    del data["generation"]
    path.write_text(yaml.safe_dump(data))
    code, _, err = _run(capsys, "ingest", str(path))
    _one_line_error(code, err, "missing key 'generation'")


def test_unknown_model_name(capsys, tmp_path: Path, small_dataset: Path) -> None:
    path = write_config(tmp_path, small_dataset / "corpus.jsonl", generation={"model": "gpt-9", "prompt": "plain"})
    code, _, err = _run(capsys, "ask", str(path), "hello")
    _one_line_error(code, err, "unknown model 'gpt-9'", "extractive")


def test_unknown_route_name(capsys, tmp_path: Path, small_dataset: Path) -> None:
    routing = {"default": "nowhere", "routes": {"general": {"utterances": ["hi"]}}}
    path = write_config(tmp_path, small_dataset / "corpus.jsonl", routing=routing)
    code, _, err = _run(capsys, "ask", str(path), "hello")
    _one_line_error(code, err, "default route 'nowhere'")


def test_empty_corpus(capsys, tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    path = write_config(tmp_path, empty)
    code, _, err = _run(capsys, "ingest", str(path))
    _one_line_error(code, err, "empty.jsonl")


def test_malformed_dataset_row(capsys, extractive_config: Path, small_dataset: Path) -> None:
    with (small_dataset / "questions.jsonl").open("a") as fh:
        fh.write(json.dumps({"id": "bad"}) + "\n")
    lineno = len((small_dataset / "questions.jsonl").read_text().splitlines())
    code, _, err = _run(capsys, "run", str(extractive_config), "--dataset", str(small_dataset), "--no-log")
    _one_line_error(code, err, f"questions.jsonl:{lineno}", "question")


def test_question_over_size_limit(capsys, extractive_config: Path) -> None:
    assert _run(capsys, "ingest", str(extractive_config))[0] == 0
    code, _, err = _run(capsys, "ask", str(extractive_config), "why " * 600)
    _one_line_error(code, err, "2,400", "2,000")


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
    assert _run(capsys, "ingest", str(path))[0] == 0
    code, _, err = _run(capsys, "ask", str(path), "Who picked up the remaining four packages?")
    _one_line_error(code, err, "remote")


def test_unknown_dataset(capsys, extractive_config: Path) -> None:
    code, _, err = _run(capsys, "run", str(extractive_config), "--dataset", "nope", "--no-log")
    _one_line_error(code, err, "dataset 'nope' not found")
