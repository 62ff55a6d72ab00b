"""Shared fixtures: small, real configs and datasets in a temporary folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch: pytest.MonkeyPatch) -> None:
    # Configs and dataset names resolve relative to the repository root, as for a user.
    monkeypatch.chdir(REPO)


@pytest.fixture
def small_dataset(tmp_path: Path) -> Path:
    """The first 12 squad_disfl paragraphs and their first 24 questions, as a dataset folder."""
    src = REPO / "datasets" / "squad_disfl"
    docs = [json.loads(line) for line in (src / "corpus.jsonl").read_text().splitlines()[:12]]
    ids = {d["id"] for d in docs}
    questions = [json.loads(line) for line in (src / "questions.jsonl").read_text().splitlines()]
    questions = [q for q in questions if set(q["gold_doc_ids"]) <= ids][:24]
    folder = tmp_path / "small_squad"
    folder.mkdir()
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (folder / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    return folder


def write_config(tmp_path: Path, corpus: Path, **overrides: object) -> Path:
    """An extractive-model config with its store in tmp_path; `overrides` replace top-level keys."""
    data = yaml.safe_load((REPO / "experiments" / "extractive.yaml").read_text())
    data["store"] = {"indexes": str(tmp_path / "indexes"), "cache": str(tmp_path / "stage_cache.sqlite")}
    data["ingestion"]["source"] = str(corpus)
    data.update(overrides)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def extractive_config(tmp_path: Path, small_dataset: Path) -> Path:
    return write_config(tmp_path, small_dataset / "corpus.jsonl")


@pytest.fixture
def mlflow_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`python -m workbench ARGV` in process: (exit code, stdout, stderr)."""
    from workbench.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    """A user's mistake: exit 2 and one `error:` line on stderr naming each of `needles`."""
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]
