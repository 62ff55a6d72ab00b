"""A small real sweep: the extractive pipeline over 12 paragraphs, with a hashing embedder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import write_config


def write_spec(tmp_path: Path, corpus: Path, **spec: Any) -> Path:
    """A sweep spec over the extractive test config; `spec` replaces top-level keys. The base
    config has a second extractive endpoint, `strict`, that abstains on almost everything."""
    base = write_config(tmp_path, corpus)
    data = yaml.safe_load(base.read_text())
    data["models"]["strict"] = {"provider": "extractive", "min_support": 0.99}
    base.write_text(yaml.safe_dump(data))
    body: dict[str, Any] = {
        "name": "test-sweep",
        "base": base.name,
        "axes": {"retrieval.top_k": [1, 3], "retrieval.mode": ["bm25", "hybrid"]},
        "objective": {"metric": "token_f1"},
        "metrics": ["hit_at_k", "token_f1", "abstention"],
    }
    body.update(spec)
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


@pytest.fixture
def sweep_spec(tmp_path: Path, small_dataset: Path) -> Path:
    return write_spec(tmp_path, small_dataset / "corpus.jsonl")
