"""`python -m workbench calibrate CONFIG --labels FILE`: the written config and report, bad label
files, and a real run with the real embedder and an MLflow store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from tests.conftest import REPO, assert_one_line_error, run_cli
from workbench.calibrate_command import Settings, calibrate
from workbench.core.config import load_yaml
from workbench.core.schema import PipelineConfig
from workbench.testing.embedders import HashingEmbedder

ROUTING = {
    "default": "general",
    "threshold": 0.4,
    "routes": {
        "general": {"utterances": ["When did it happen?", "Who was responsible for this?"]},
        "structured": {"utterances": ["Return a JSON object with the answer", "Give me the answer as JSON"]},
    },
}


def _config(tmp_path: Path, checks: list[dict], output: list[dict] | None = None) -> Path:
    data = yaml.safe_load((REPO / "experiments" / "extractive.yaml").read_text())
    data["guardrails"] = {"input": checks, "output": output or []}
    data["routing"] = ROUTING
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _guard_rows(n: int) -> list[dict]:
    """The first n attacks and n benign prompts of the guard train split, as labelled examples."""
    rows = [json.loads(line) for line in (REPO / "datasets" / "guard" / "train.jsonl").read_text().splitlines()]
    attacks = [r for r in rows if r["label"] == "attack"][:n]
    benign = [r for r in rows if r["label"] == "benign"][:n]
    return [{"id": r["id"], "text": r["text"], "attack": r["label"] == "attack"} for r in attacks + benign]


def _route_rows(n: int) -> list[dict]:
    questions = [json.loads(line)["question"] for line in (REPO / "datasets/squad_disfl/questions.jsonl").open()]
    general = [{"id": f"g{i}", "text": q, "route": "general"} for i, q in enumerate(questions[:n])]
    structured = [
        {"id": f"s{i}", "text": f"Return a JSON object answering: {q}", "route": "structured"}
        for i, q in enumerate(questions[n : 2 * n])
    ]
    return general + structured


def _labels(tmp_path: Path, rows: list[dict], name: str = "labels.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _only_thresholds_differ(old: dict, new: dict, path: str = "") -> list[str]:
    """The dotted paths where two dumped configs differ; every one must be a threshold."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            d for k in old.keys() | new.keys() for d in _only_thresholds_differ(old.get(k), new.get(k), f"{path}.{k}")
        ]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            d
            for i, (a, b) in enumerate(zip(old, new, strict=True))
            for d in _only_thresholds_differ(a, b, f"{path}.{i}")
        ]
    return [] if old == new else [path]


def test_written_config_round_trips_and_differs_only_in_thresholds(tmp_path):
    config = _config(tmp_path, [{"check": "max_size"}, {"check": "injection", "threshold": 0.5}])
    labels = _labels(tmp_path, _guard_rows(40) + _route_rows(12))
    out = tmp_path / "fitted" / "config.yaml"
    result = calibrate(config, labels, out=out, embedder=HashingEmbedder(512), settings=Settings(target_fpr=0.05))
    assert result.config_path == out and result.report_path == out.parent / "calibration.json"
    old, new = load_yaml(PipelineConfig, config), load_yaml(PipelineConfig, out)
    changed = _only_thresholds_differ(old.model_dump(mode="json"), new.model_dump(mode="json"))
    assert set(changed) <= {".guardrails.input.1.threshold", ".routing.threshold"} and changed
    report = json.loads(result.report_path.read_text())
    [injection] = report["checks"]
    assert injection["name"] == "injection" and (injection["positives"], injection["negatives"]) == (40, 40)
    assert injection["new"]["threshold"] == new.guardrails.input[1].threshold
    assert injection["old"]["threshold"] == 0.5
    # The fit's FPR meets the target; its interval and counts are consistent.
    fitted = injection["new"]
    assert fitted["fp"] / (fitted["fp"] + fitted["tn"]) <= 0.05 and fitted["fp"] + fitted["tn"] == 40
    assert fitted["fpr"]["low"] <= fitted["fpr"]["value"] <= fitted["fpr"]["high"]
    unseen = injection["out_of_bag"]["fpr"]
    assert unseen["low"] <= unseen["value"] <= unseen["high"]
    assert report["router"]["new"]["threshold"] == new.routing.threshold
    assert report["router"]["new"]["accuracy"]["value"] >= report["router"]["old"]["accuracy"]["value"]
    assert report["not_calibrated"] == ["input/max_size"]
    # Loading the written file again gives the same config: it round-trips.
    assert PipelineConfig.model_validate(yaml.safe_load(out.read_text())) == new


def test_holdout_figures_and_groundedness(tmp_path):
    config = _config(tmp_path, [], output=[{"check": "groundedness", "threshold": 0.5}])
    context = "Rollo, a Viking leader, agreed to swear fealty to King Charles III of West Francia in 911."
    rows = [
        {"id": f"o{i}", "answer": a, "contexts": [context], "grounded": g}
        for i, (a, g) in enumerate(
            [("Rollo swore fealty in 911.", True), ("Charles III ruled West Francia.", True)] * 6
            + [("The treaty was signed in Paris by Napoleon.", False), ("Bananas grow on tall trees.", False)] * 6
        )
    ]
    labels, holdout = _labels(tmp_path, rows), _labels(tmp_path, rows[:4] + rows[-4:], "held.jsonl")
    result = calibrate(
        config, labels, holdout=holdout, embedder=HashingEmbedder(512), settings=Settings(min_examples=5)
    )
    [entry] = result.report["checks"]
    assert entry["polarity"] == "below" and entry["new"]["fpr"]["value"] == 0.0 and entry["new"]["recall"]["value"] == 1
    assert entry["holdout"]["positives"] == 4 and entry["holdout"]["new"]["tp"] == 4
    assert any("cannot resolve an FPR" in w for w in result.warnings)  # 12 negatives, target 1%


def _run(capsys, tmp_path: Path, config: Path, labels: Path, *extra: str) -> tuple[int, str, str]:
    out = tmp_path / "new.yaml"
    return run_cli(capsys, "calibrate", str(config), "--labels", str(labels), "--out", str(out), "--no-log", *extra)


@pytest.mark.parametrize(
    ("lines", "needles"),
    [
        (['{"id": "a", "text": "hi", "attack": true}', '{"id": "b", "text": '], ["labels.jsonl:2", "not valid JSON"]),
        (['{"id": "a", "text": "hi", "atack": true}'], ["labels.jsonl:1", "unknown key 'atack'"]),
        (['{"id": "a", "text": "hi", "attack": "yes"}'], ["labels.jsonl:1", "'attack' must be true or false"]),
        (['{"id": "a", "text": "hi"}'], ["labels.jsonl:1", "no label"]),
        (['{"text": "hi", "attack": true}'], ["labels.jsonl:1", "missing 'id'"]),
        (['{"id": "a", "attack": true}'], ["labels.jsonl:1", "label 'attack' needs 'text'"]),
        (['{"id": "a", "text": "hi", "route": "sql"}'], ["labels.jsonl:1", "unknown route 'sql'", "general"]),
        (['{"id": "a", "answer": "x", "grounded": true}'], ["labels.jsonl:1", "label 'grounded' needs 'contexts'"]),
        (
            ['{"id": 1, "text": "a", "attack": true}', '{"id": 1, "text": "b", "attack": false}'],
            ["labels.jsonl:2", "duplicate id"],
        ),
        ([""], ["labels.jsonl", "no labelled examples"]),
    ],
)
def test_bad_label_files_are_one_line_errors(tmp_path, capsys, lines, needles):
    config = _config(tmp_path, [{"check": "injection"}])
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(line + "\n" for line in lines))
    code, _, err = _run(capsys, tmp_path, config, labels)
    assert_one_line_error(code, err, *needles)
    assert not (tmp_path / "new.yaml").exists()


def test_too_few_examples_overwriting_and_nothing_to_fit(tmp_path, capsys):
    config = _config(tmp_path, [{"check": "injection"}])
    few = _labels(tmp_path, _guard_rows(5))
    assert_one_line_error(*_run(capsys, tmp_path, config, few)[::2], "5 positive and 5 negative", "at least 10")
    enough = _labels(tmp_path, _guard_rows(12), "enough.jsonl")
    code, _, err = run_cli(capsys, "calibrate", str(config), "--labels", str(enough), "--out", str(config), "--no-log")
    assert_one_line_error(code, err, "never overwrites")
    no_check = _config(tmp_path, [{"check": "max_size"}])
    assert_one_line_error(*_run(capsys, tmp_path, no_check, enough)[::2], "nothing to calibrate")
    code, _, err = _run(capsys, tmp_path, config, enough, "--target-fpr", "1.5")
    assert_one_line_error(code, err, "--target-fpr")


@pytest.mark.integration
@pytest.mark.slow
def test_real_run_writes_config_report_and_an_mlflow_run(tmp_path, capsys, mlflow_uri):
    pytest.importorskip("sentence_transformers")
    config = _config(tmp_path, [{"check": "attack"}, {"check": "injection"}])
    labels = _labels(tmp_path, _guard_rows(15) + _route_rows(10))
    out = tmp_path / "calibrated" / "quick.yaml"
    code, stdout, err = run_cli(
        capsys, "calibrate", str(config), "--labels", str(labels), "--out", str(out), "--tracking-uri", mlflow_uri
    )
    assert code == 0, err
    assert "input/attack" in stdout and "input/injection" in stdout and "routing" in stdout
    new = load_yaml(PipelineConfig, out)
    report = json.loads((out.parent / "calibration.json").read_text())
    names = [c["name"] for c in report["checks"]]
    assert names == ["attack", "injection"] and report["router"] is not None
    attack = report["checks"][0]
    assert attack["new"]["threshold"] == new.guardrails.input[0].threshold
    assert 0 < attack["old"]["threshold"] < 1  # the head's own default, resolved
    run_id = stdout.split("mlflow run: ")[1].split()[0]
    run = MlflowClient(mlflow_uri).get_run(run_id)
    assert run.data.tags["workbench.kind"] == "calibrate"
    assert run.data.metrics["input.attack.threshold"] == attack["new"]["threshold"]
    assert run.data.metrics["input.attack.tp"] == attack["new"]["tp"] and "routing.accuracy" in run.data.metrics
    assert run.data.params["target_fpr"] == "0.01"
    artifacts = {a.path for a in MlflowClient(mlflow_uri).list_artifacts(run_id)}
    assert {"calibration.json", "quick.yaml"} <= artifacts


def test_the_shipped_example_labels_are_valid_for_the_quickstart():
    from workbench._calibrate_labels import read_labels

    quickstart = load_yaml(PipelineConfig, REPO / "experiments" / "quickstart.yaml")
    examples = read_labels(REPO / "datasets" / "calibration" / "example.jsonl", set(quickstart.routing.routes))
    assert len(examples) == 140
    assert sum(e.labels.get("attack") is True for e in examples) == 40
    assert {e.route for e in examples if e.route} == {"general", "structured"}
    assert sum("grounded" in e.labels for e in examples) == 30


def test_conservative_fit_warns_when_the_negatives_cannot_bound_the_target(tmp_path):
    config = _config(tmp_path, [{"check": "injection"}])
    labels = _labels(tmp_path, _guard_rows(40))
    settings = Settings(target_fpr=0.05, conservative=True)
    result = calibrate(config, labels, embedder=HashingEmbedder(512), settings=settings, out=tmp_path / "c.yaml")
    [entry] = result.report["checks"]
    assert entry["new"]["fp"] == 0 and result.report["settings"]["conservative"] is True
    assert any("even 0 false positives" in w for w in result.warnings)  # 0 of 40: upper bound 0.088
