"""`python -m workbench export` and `verify`: one-line errors and exit 2, the digest on success."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.bundle.conftest import Evaluated
from tests.conftest import assert_one_line_error, run_cli
from workbench.bundle.export import ExportReport


def test_verify_prints_the_digest(capsys, bundle_report: ExportReport) -> None:
    code, out, _ = run_cli(capsys, "verify", str(bundle_report.path))
    assert code == 0 and out.strip() == f"ok {bundle_report.digest}"


def test_verify_refuses_a_tampered_bundle_in_one_line(capsys, bundle_report: ExportReport, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(bundle_report.path, tmp_path / "copy"))
    with (copy / "config.yaml").open("a") as fh:
        fh.write("# edited\n")
    code, _, err = run_cli(capsys, "verify", str(copy))
    assert_one_line_error(code, err, "config.yaml changed")
    code, _, err = run_cli(capsys, "verify", str(tmp_path / "nothing-here"))
    assert_one_line_error(code, err, "not a bundle folder")


def test_export_of_an_unknown_source_is_one_line(capsys, evaluated: Evaluated, tmp_path: Path) -> None:
    uri = evaluated.tracker.tracking_uri
    code, _, err = run_cli(capsys, "export", "sw-000000000000", "--out", str(tmp_path / "b"), "--tracking-uri", uri)
    assert_one_line_error(code, err, "unknown source 'sw-000000000000'")
    assert not (tmp_path / "b").exists()


def test_export_of_a_config_without_dataset_is_one_line(capsys, evaluated: Evaluated, tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "export", str(evaluated.config), "--out", str(tmp_path / "b"))
    assert_one_line_error(code, err, "pass --dataset")


def test_export_into_a_non_empty_folder_is_one_line(capsys, evaluated: Evaluated, tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "keep.txt").write_text("x")
    code, _, err = run_cli(
        capsys,
        "export",
        evaluated.run_id,
        "--out",
        str(tmp_path / "b"),
        "--tracking-uri",
        evaluated.tracker.tracking_uri,
    )
    assert_one_line_error(code, err, "not empty; pass --force")


def test_export_json_report(capsys, evaluated: Evaluated, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The CLI builds its own embedder; hand it the test's hashing one instead of the real model.
    import workbench.bundle.export as export_module
    from workbench.testing.embedders import HashingEmbedder

    real = export_module.export_bundle

    def with_fake(*args, **kwargs):
        return real(*args, **kwargs | {"embedder": HashingEmbedder(), "root": evaluated.root})

    monkeypatch.setattr(export_module, "export_bundle", with_fake)
    out = tmp_path / "b"
    code, stdout, err = run_cli(
        capsys,
        "export",
        evaluated.run_id,
        "--out",
        str(out),
        "--golden",
        "2",
        "--no-register",
        "--json",
        "--tracking-uri",
        evaluated.tracker.tracking_uri,
    )
    assert code == 0, err
    report = json.loads(stdout)
    assert report["path"] == str(out) and report["golden"] == 2 and report["registered"] is None
    code, verified, _ = run_cli(capsys, "verify", str(out))
    assert code == 0 and verified.strip() == f"ok {report['digest']}"
