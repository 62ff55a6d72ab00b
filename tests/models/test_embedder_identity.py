"""An embedder's identity (which keys indexes and cached stages) covers the packages behind it."""

import pytest

from workbench.core.config import load_yaml
from workbench.core.schema import PipelineConfig
from workbench.models.embedder import SentenceTransformerEmbedder


def test_new_weights_package_or_library_version_changes_the_fingerprint(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_yaml(PipelineConfig, "experiments/quickstart.yaml").embedder
    before = SentenceTransformerEmbedder(config).fingerprint
    assert SentenceTransformerEmbedder(config.model_copy(update={"batch_size": 7})).fingerprint == before
    monkeypatch.setattr("workbench.core.resources.package_version", lambda name: "9.9.9")
    assert SentenceTransformerEmbedder(config).fingerprint != before
    monkeypatch.undo()
    monkeypatch.setattr("workbench.models.embedder.package_versions", lambda names: dict.fromkeys(names, "0"))
    assert SentenceTransformerEmbedder(config).fingerprint != before
