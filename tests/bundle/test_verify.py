"""A tampered or incomplete bundle is refused, naming the first mismatch; runtime state is not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.bundle import Bundle, verify_bundle
from workbench.bundle.export import ExportReport
from workbench.core.errors import BundleError


def _index_file(folder: Path) -> Path:
    return folder / "index" / json.loads((folder / "index/index.json").read_text())["file"]


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_an_untouched_copy_verifies_to_the_same_digest(bundle_copy: Path, bundle_report: ExportReport) -> None:
    assert verify_bundle(bundle_copy) == bundle_report.digest
    assert verify_bundle(bundle_copy, expected_digest=bundle_report.digest) == bundle_report.digest


def test_an_edited_config_is_refused(bundle_copy: Path) -> None:
    _flip_a_byte(bundle_copy / "config.yaml")
    with pytest.raises(BundleError, match=r"config.yaml changed \(sha256"):
        verify_bundle(bundle_copy)
    with pytest.raises(BundleError, match="config.yaml changed"):
        Bundle.open(bundle_copy)


def test_a_grown_file_is_refused_by_size(bundle_copy: Path) -> None:
    with (bundle_copy / "golden.jsonl").open("a") as fh:
        fh.write("\n")
    with pytest.raises(BundleError, match=r"golden.jsonl changed \(size"):
        verify_bundle(bundle_copy)


def test_a_deleted_index_file_is_refused(bundle_copy: Path) -> None:
    index = _index_file(bundle_copy)
    index.unlink()
    with pytest.raises(BundleError, match=f"index/{index.name} is missing"):
        verify_bundle(bundle_copy)


def test_an_extra_file_is_refused(bundle_copy: Path) -> None:
    (bundle_copy / "index" / "extra.duckdb").write_bytes(b"not listed")
    with pytest.raises(BundleError, match="index/extra.duckdb is not listed in the manifest"):
        verify_bundle(bundle_copy)


def test_a_corrupt_manifest_is_refused(bundle_copy: Path) -> None:
    manifest = bundle_copy / "manifest.json"
    manifest.write_text(manifest.read_text()[:-20])
    with pytest.raises(BundleError, match="manifest.json: unreadable"):
        verify_bundle(bundle_copy)


def test_a_missing_manifest_is_refused(bundle_copy: Path) -> None:
    (bundle_copy / "manifest.json").unlink()
    with pytest.raises(BundleError, match="manifest.json: missing"):
        verify_bundle(bundle_copy)


def test_a_changed_digest_is_refused(bundle_copy: Path, bundle_report: ExportReport) -> None:
    manifest_path = bundle_copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["digest"] = "0" * 64
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="digest does not match its files"):
        verify_bundle(bundle_copy)


def test_a_file_and_its_manifest_entry_edited_together_are_caught_by_the_digest(bundle_copy: Path) -> None:
    from workbench.bundle.manifest import file_digest

    config = bundle_copy / "config.yaml"
    config.write_text(config.read_text().replace("top_k: 4", "top_k: 9"))
    manifest_path = bundle_copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["config.yaml"] = {"sha256": file_digest(config), "size": config.stat().st_size}
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="digest does not match"):
        verify_bundle(bundle_copy)


def test_a_wrong_format_version_is_refused(bundle_copy: Path) -> None:
    manifest_path = bundle_copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["format_version"] = 99
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="format version 99"):
        verify_bundle(bundle_copy)


def test_a_digest_other_than_the_expected_one_is_refused(bundle_copy: Path) -> None:
    with pytest.raises(BundleError, match="is not the expected"):
        verify_bundle(bundle_copy, expected_digest="f" * 64)


def test_runtime_state_under_var_is_ignored(bundle_copy: Path, bundle_report: ExportReport) -> None:
    bundle = Bundle.open(bundle_copy)
    log_dir = bundle.request_log_dir
    assert log_dir == bundle_copy / "var" and log_dir.is_dir()
    (log_dir / "requests.duckdb").write_bytes(b"served traffic")
    (log_dir / "nested").mkdir()
    (log_dir / "nested" / "x.wal").write_bytes(b"more")
    assert verify_bundle(bundle_copy) == bundle_report.digest
    assert Bundle.open(bundle_copy).digest == bundle_report.digest


def test_open_without_verify_still_parses_every_file(bundle_copy: Path) -> None:
    (bundle_copy / "scorecard.json").write_text("{not json")
    with pytest.raises(BundleError, match="scorecard.json is unreadable"):
        Bundle.open(bundle_copy, verify=False)
