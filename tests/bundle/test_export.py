"""Exporting the evaluated pipeline: from a run id, a config and a dataset, and a sweep's winner;
what the bundle holds, that it serves the evaluated answers, and when export refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.bundle.conftest import QUESTIONS, Evaluated, make_dataset
from tests.conftest import write_config
from tests.sweeps.conftest import write_spec
from workbench.bundle import Bundle, verify_bundle
from workbench.bundle.export import ExportReport
from workbench.core.config import load_yaml
from workbench.core.dataset import load_dataset
from workbench.core.errors import BundleError, ConfigError
from workbench.core.schema import PipelineConfig
from workbench.pipeline import build_pipeline
from workbench.session import Workbench
from workbench.sweeps import run_sweep
from workbench.testing.embedders import HashingEmbedder
from workbench.testing.models import FunctionModel

FILES = {
    "config.yaml",
    "prompts.json",
    "index/index.json",
    "models.json",
    "scorecard.json",
    "golden.jsonl",
    "environment.json",
    "manifest.json",
}


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_a_run_exports_to_a_bundle_that_verifies_and_round_trips(
    evaluated: Evaluated, bundle_report: ExportReport
) -> None:
    folder = bundle_report.path
    tags = evaluated.tracker.run_tags(evaluated.run_id)
    index_file = f"index/{json.loads((folder / 'index/index.json').read_text())['file']}"
    assert _files(folder) == FILES | {index_file}
    assert verify_bundle(folder) == bundle_report.digest
    bundle = Bundle.open(folder, root=evaluated.root)
    assert bundle.digest == bundle_report.digest == bundle.manifest["digest"]
    # The config is the evaluated one, and round-trips through the bundle's YAML.
    evaluated_config = load_yaml(PipelineConfig, evaluated.config)
    assert bundle.config == evaluated_config
    assert PipelineConfig.model_validate(yaml.safe_load((folder / "config.yaml").read_text())) == evaluated_config
    # The scorecard names the run, the dataset's fingerprint and the run's metrics.
    card = bundle.scorecard
    assert card["mlflow"]["run_id"] == evaluated.run_id and card["sweep"] is None
    dataset = load_dataset("small_squad", base=evaluated.root)
    assert card["dataset"] == {"name": "small_squad", "fingerprint": dataset.content_hash, "questions": QUESTIONS}
    assert card["metrics"]["questions"]["value"] == QUESTIONS
    assert card["index_fingerprint"] == tags["index_fingerprint"]
    # Golden questions come from the run's table, with what it retrieved and answered.
    table = evaluated.tracker.load_table(evaluated.run_id).set_index("question_id")
    assert len(bundle.golden) == 5
    for q in bundle.golden:
        assert q.expected_retrieved == json.loads(table.loc[q.question_id, "retrieved"])
        assert q.expected_answer == table.loc[q.question_id, "answer"]
    # Prompts: the config's, with their registry entry when the run has one (a plain run has none).
    assert set(json.loads((folder / "prompts.json").read_text())) == set(evaluated_config.prompts)


def test_the_bundle_session_is_the_evaluated_pipeline_over_the_bundle_index(
    evaluated: Evaluated, bundle_report: ExportReport
) -> None:
    bundle = Bundle.open(bundle_report.path, root=evaluated.root)
    embedder = HashingEmbedder()
    with bundle.session(embedder=embedder) as wb:
        assert wb.cache is None
        assert wb.index.fingerprint == evaluated.tracker.run_tags(evaluated.run_id)["index_fingerprint"]
        expected = build_pipeline(bundle.config, embedder, wb.index, wb.pool)
        assert [s.name for s in wb.pipeline.stages] == [s.name for s in expected.stages]
        q = bundle.golden[0]
        state = wb.ask(q.question)
        assert state.answer == q.expected_answer
        assert [f"{c.doc_id}:{c.start}-{c.end}" for c in state.chunks] == q.expected_retrieved
        assert wb.loop.run(bundle.arun_golden(wb.pipeline)) == []
    # Answering wrote nothing into the bundle: it still verifies.
    assert verify_bundle(bundle_report.path) == bundle_report.digest


def test_the_bundle_is_registered_with_an_alias_and_its_digest(
    evaluated: Evaluated, bundle_report: ExportReport
) -> None:
    client = evaluated.tracker.client
    registered = bundle_report.registered
    assert registered is not None and registered.name == "workbench.extractive"
    version = client.get_model_version_by_alias(registered.name, "candidate")
    assert str(version.version) == registered.version
    assert version.tags["workbench.bundle_digest"] == bundle_report.digest
    assert version.tags["workbench.bundle_path"] == str(bundle_report.path.resolve())
    assert version.run_id == evaluated.run_id
    run = client.get_run(evaluated.run_id)
    assert run.data.tags["workbench.bundle_digest"] == bundle_report.digest
    # The version is the run's LoggedModel: its source, and the model lists the version (the
    # SQL registry keeps no model_id column; this tag is how MLflow's own register_model links them).
    model = client.get_logged_model(run.data.tags["workbench.model_id"])
    assert version.source == model.artifact_location
    assert {"name": registered.name, "version": registered.version} in json.loads(model.tags["mlflow.modelVersions"])


def test_a_config_is_run_over_its_dataset_then_exported(evaluated: Evaluated, tmp_path: Path) -> None:
    report = evaluated.export(
        tmp_path / "from-config", source=str(evaluated.config), dataset="small_squad", limit=4, register=False
    )
    assert report.run_id != evaluated.run_id and report.registered is None
    tags = evaluated.tracker.run_tags(report.run_id)
    assert tags["workbench.kind"] == "run" and tags["dataset"] == "small_squad"
    bundle = Bundle.open(report.path, root=evaluated.root)
    assert bundle.scorecard["mlflow"]["run_id"] == report.run_id
    assert len(bundle.golden) == 4


def test_a_config_without_a_dataset_is_refused(evaluated: Evaluated, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--dataset"):
        evaluated.export(tmp_path / "b", source=str(evaluated.config))
    assert not (tmp_path / "b").exists()


def test_an_unknown_source_is_refused(evaluated: Evaluated, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="unknown source 'no-such-run'"):
        evaluated.export(tmp_path / "b", source="no-such-run")


def test_a_golden_replay_that_differs_refuses_the_export_and_leaves_nothing(
    evaluated: Evaluated, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "bundle"
    other = FunctionModel(lambda request: "A different answer.")
    with pytest.raises(BundleError, match=r"golden replay differs .*: sq-\S+: answered 'A different answer.'"):
        evaluated.export(out, models={"extractive": other}, register=False)
    assert list((tmp_path / "out").iterdir()) == []  # no bundle, no half-built temporary folder
    client = evaluated.tracker.client
    assert all(v.tags.get("workbench.bundle_path") != str(out) for v in client.search_model_versions())


def test_a_non_empty_out_folder_needs_force(evaluated: Evaluated, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(BundleError, match="not empty; pass --force"):
        evaluated.export(out, register=False, golden=1)
    assert (out / "notes.txt").read_text() == "mine"
    report = evaluated.export(out, register=False, golden=1, force=True)
    assert not (out / "notes.txt").exists() and verify_bundle(out) == report.digest
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]


def test_a_changed_dataset_is_refused(evaluated: Evaluated, tmp_path: Path) -> None:
    changed = make_dataset(tmp_path / "small_squad", questions=5)
    with pytest.raises(BundleError, match="content hash"):
        evaluated.export(tmp_path / "b", dataset=changed, register=False)


def test_a_sweep_winner_exports_with_its_sweep_id_and_replays_identically(tmp_path: Path) -> None:
    from workbench.tracking import MlflowTracker

    dataset = make_dataset(tmp_path / "small_squad")
    spec = write_spec(tmp_path, dataset / "corpus.jsonl")
    tracker = MlflowTracker(tmp_path / "mlflow.db")
    result = run_sweep(spec, dataset, root=tmp_path, limit=6, tracker=tracker, embedder=HashingEmbedder())
    assert result.winner is not None
    from workbench.bundle import export_bundle

    report = export_bundle(
        result.sweep_id, tmp_path / "bundle", root=tmp_path, tracker=tracker, embedder=HashingEmbedder()
    )
    bundle = Bundle.open(report.path, root=tmp_path)
    child = tracker.client.get_run(report.run_id)
    assert report.sweep_id == result.sweep_id
    assert child.data.tags["workbench.variant"] == result.winner
    assert child.data.tags["mlflow.parentRunId"] == result.parent_run_id
    assert bundle.scorecard["sweep"] == {"sweep_id": result.sweep_id, "variant": result.winner}
    winner_config = dict(zip(result.variants["variant"], result.variants["config_hash"], strict=True))
    assert bundle.scorecard["config_hash"] == winner_config[result.winner]
    token_f1 = bundle.scorecard["metrics"]["token_f1"]
    assert {"value", "ci_low", "ci_high", "n"} <= set(token_f1)
    assert token_f1["ci_low"] <= token_f1["value"] <= token_f1["ci_high"]
    # The winner's recorded answers replayed identically with no stage cache (else export refuses).
    assert len(bundle.golden) == 5
    with bundle.session(embedder=HashingEmbedder()) as wb:
        assert wb.loop.run(bundle.arun_golden(wb.pipeline)) == []
    registered = report.registered
    assert registered is not None
    version = tracker.client.get_model_version_by_alias(registered.name, "candidate")
    assert version.tags["workbench.sweep_id"] == result.sweep_id


def test_export_writes_nothing_relative_to_the_cwd(evaluated: Evaluated, tmp_path: Path) -> None:
    # Relative --out resolves against the session root, as every other path does.
    report = evaluated.export("relative-bundle", register=False, golden=1)
    assert report.path == evaluated.root / "relative-bundle" and report.path.is_dir()


def test_workbench_pinned_to_an_index_answers_from_it(
    evaluated: Evaluated, bundle_report: ExportReport, tmp_path: Path
) -> None:
    other = make_dataset(tmp_path / "other", docs=3, questions=2)
    config = load_yaml(PipelineConfig, write_config(tmp_path, other / "corpus.jsonl"))
    index = Bundle.open(bundle_report.path, root=evaluated.root).index_path
    with Workbench(config, embedder=HashingEmbedder(), cache=None, root=tmp_path, index=index) as pinned:
        # The config's corpus has 3 documents; the pinned index is the bundle's, over 12.
        assert len({doc for doc in pinned.index.data.doc_ids}) == 12
