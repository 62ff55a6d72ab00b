"""A real evaluated run to export: the extractive pipeline over 12 paragraphs with a hashing
embedder, logged to a SQLite MLflow store in a temporary folder, and bundles made from it.

Building a run and a bundle takes seconds, so one of each is made per test session and tests that
tamper with a bundle work on a copy.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, write_config
from workbench.bundle import export_bundle
from workbench.bundle.export import ExportReport
from workbench.session import Workbench
from workbench.testing.embedders import HashingEmbedder
from workbench.tracking import MlflowTracker

QUESTIONS = 8


def make_dataset(folder: Path, docs: int = 12, questions: int = 24) -> Path:
    """The first squad_disfl paragraphs and their questions, as a dataset folder."""
    src = REPO / "datasets" / "squad_disfl"
    rows = [json.loads(line) for line in (src / "corpus.jsonl").read_text().splitlines()[:docs]]
    ids = {d["id"] for d in rows}
    qs = [json.loads(line) for line in (src / "questions.jsonl").read_text().splitlines()]
    qs = [q for q in qs if set(q["gold_doc_ids"]) <= ids][:questions]
    folder.mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in rows))
    (folder / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in qs))
    return folder


@dataclass
class Evaluated:
    """A session root holding a dataset, a config, an MLflow store and one logged run."""

    root: Path
    config: Path
    tracker: MlflowTracker
    run_id: str

    def export(self, out: str | Path, **kwargs: Any) -> ExportReport:
        kwargs.setdefault("root", self.root)
        kwargs.setdefault("tracker", self.tracker)
        kwargs.setdefault("embedder", HashingEmbedder())
        return export_bundle(kwargs.pop("source", self.run_id), out, **kwargs)


def evaluated_root(root: Path, **config: Any) -> Evaluated:
    dataset = make_dataset(root / "small_squad")
    path = write_config(root, dataset / "corpus.jsonl", **config)
    tracker = MlflowTracker(root / "mlflow.db")
    with Workbench.from_yaml(path, root=root, embedder=HashingEmbedder(), tracker=tracker) as wb:
        run = wb.run("small_squad", limit=QUESTIONS)
    assert run.run_id is not None
    return Evaluated(root, path, tracker, run.run_id)


@pytest.fixture(scope="session")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> Evaluated:
    return evaluated_root(tmp_path_factory.mktemp("evaluated"))


@pytest.fixture(scope="session")
def bundle_report(evaluated: Evaluated) -> ExportReport:
    return evaluated.export(evaluated.root / "bundle")


@pytest.fixture
def bundle_copy(bundle_report: ExportReport, tmp_path: Path) -> Path:
    """A copy of the module's bundle, free to tamper with."""
    return Path(shutil.copytree(bundle_report.path, tmp_path / "copy"))
