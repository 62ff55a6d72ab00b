"""A slim bundle carries only its index's manifest: it loads the index from the store (or a given
file) and refuses one whose content differs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.bundle.conftest import Evaluated, make_dataset
from workbench.bundle import Bundle, verify_bundle
from workbench.core.config import load_yaml
from workbench.core.errors import BundleError
from workbench.core.schema import PipelineConfig
from workbench.retrieval.catalog import IndexCatalog
from workbench.testing.embedders import HashingEmbedder


@pytest.fixture(scope="module")
def slim(evaluated: Evaluated) -> Path:
    report = evaluated.export(evaluated.root / "slim", slim=True, register=False)
    return report.path


def _described(folder: Path) -> dict:
    return json.loads((folder / "index" / "index.json").read_text())


def test_a_slim_bundle_holds_only_the_index_manifest(slim: Path, evaluated: Evaluated) -> None:
    assert [p.name for p in (slim / "index").iterdir()] == ["index.json"]
    described = _described(slim)
    assert described["included"] is False and described["chunks"] > 0
    assert described["fingerprint"] == evaluated.tracker.run_tags(evaluated.run_id)["index_fingerprint"]
    verify_bundle(slim)


def test_a_slim_bundle_loads_the_index_from_the_store_and_answers(slim: Path, evaluated: Evaluated) -> None:
    bundle = Bundle.open(slim, root=evaluated.root)
    config = load_yaml(PipelineConfig, evaluated.config)
    assert bundle.index_path == Path(config.store.indexes) / _described(slim)["file"]
    with bundle.session(embedder=HashingEmbedder()) as wb:
        assert wb.loop.run(bundle.arun_golden(wb.pipeline)) == []


def test_a_slim_bundle_without_its_index_is_refused_and_index_finds_it(
    slim: Path, evaluated: Evaluated, tmp_path: Path
) -> None:
    copy = Path(shutil.copytree(slim, tmp_path / "slim"))
    # The test config's store path is absolute: take the index out of it for the check.
    store_file = Bundle.open(slim, root=evaluated.root).index_path
    moved = tmp_path / "moved.duckdb"
    shutil.copyfile(store_file, moved)
    store_file.rename(tmp_path / "away.duckdb")
    try:
        with pytest.raises(BundleError, match="pass the index file with --index"):
            Bundle.open(copy, root=evaluated.root)
        assert Bundle.open(copy, root=evaluated.root, index=moved).index_path == moved
    finally:
        (tmp_path / "away.duckdb").rename(store_file)


def test_an_index_with_other_content_is_refused(slim: Path, evaluated: Evaluated, tmp_path: Path) -> None:
    config = load_yaml(PipelineConfig, evaluated.config)
    smaller = make_dataset(tmp_path / "smaller", docs=5, questions=3)
    other = IndexCatalog(tmp_path / "indexes", config.ingestion, HashingEmbedder()).ensure(smaller / "corpus.jsonl")
    with pytest.raises(BundleError, match="content hash mismatch"):
        Bundle.open(slim, root=evaluated.root, index=other)


def test_a_full_bundle_can_be_pointed_at_an_equal_index(slim: Path, evaluated: Evaluated, bundle_report) -> None:
    own = Bundle.open(bundle_report.path).index_path
    store = Bundle.open(slim, root=evaluated.root).index_path
    assert own != store
    assert Bundle.open(bundle_report.path, index=store).index_path == store
