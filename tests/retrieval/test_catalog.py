"""A run's retrieval depends only on its own inputs (issue 6, section 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.core.dataset import Document
from workbench.core.schema import IngestionConfig, RetrievalConfig
from workbench.retrieval.catalog import IndexCatalog
from workbench.testing.embedders import HashingEmbedder


def _doc(doc_id: str, text: str) -> Document:
    return Document(id=doc_id, text=text)


CORPUS_A = [
    _doc("d1", "The falcon nests on high cliffs above the northern sea."),
    _doc("d2", "Granite quarries supplied the stone for the old harbour walls."),
]
# Corpus B reuses the id d1 for different text: it must never overwrite corpus A's d1.
CORPUS_B = [
    _doc("d1", "Copper wiring carries the signal between the two relay stations."),
    _doc("d3", "The orchard grows apples, pears and a few late plums."),
]
TOP1 = RetrievalConfig(mode="bm25", top_k=1, candidates=5)


def test_each_corpus_answers_from_its_own_index(tmp_path: Path, embedder: HashingEmbedder) -> None:
    catalog = IndexCatalog(tmp_path / "indexes", IngestionConfig(chunk_size=64, chunk_overlap=8), embedder)
    before = catalog.open(CORPUS_A).search("where does the falcon nest", TOP1)
    catalog.open(CORPUS_B)  # running dataset B in between
    after = catalog.open(CORPUS_A).search("where does the falcon nest", TOP1)
    assert before == after and "falcon" in after[0].text
    b = catalog.open(CORPUS_B)
    assert [c.text for c in b.search("copper relay signal", TOP1)] == [CORPUS_B[0].text]
    assert not b.search("falcon cliffs", TOP1) or "falcon" not in b.search("falcon cliffs", TOP1)[0].text
    assert len(list((tmp_path / "indexes").glob("*.duckdb"))) == 2


def test_unchanged_inputs_share_an_index_and_settings_never_rebuild_each_other(tmp_path: Path, make_embedder) -> None:
    folder = tmp_path / "indexes"
    embedder = make_embedder(fingerprint="e1")
    small, large = IngestionConfig(chunk_size=32, chunk_overlap=4), IngestionConfig(chunk_size=64, chunk_overlap=8)
    first = IndexCatalog(folder, small, embedder).ensure(CORPUS_A)
    calls = embedder.calls
    # A variant that differs only after retrieval (same corpus, chunking, embedder): same index,
    # no embedding work.
    assert IndexCatalog(folder, small, embedder).ensure(CORPUS_A) == first and embedder.calls == calls
    other = IndexCatalog(folder, large, embedder).ensure(CORPUS_A)
    assert other != first
    mtime = first.stat().st_mtime_ns
    # Switching back to the first chunking reuses its index untouched.
    assert IndexCatalog(folder, small, embedder).ensure(CORPUS_A) == first and first.stat().st_mtime_ns == mtime
    # A different embedder is a different index too.
    assert IndexCatalog(folder, small, make_embedder(fingerprint="e2")).ensure(CORPUS_A) not in {first, other}


def test_edited_corpus_reembeds_only_what_changed(tmp_path: Path, embedder: HashingEmbedder) -> None:
    catalog = IndexCatalog(tmp_path / "indexes", IngestionConfig(chunk_size=64, chunk_overlap=8), embedder)
    catalog.ensure(CORPUS_A)
    edited = [CORPUS_A[0], _doc("d2", "Granite and basalt quarries supplied the harbour walls.")]
    embedder.batches.clear()
    catalog.ensure(edited)
    report = catalog.last_report
    assert report is not None and report.updated == 1 and report.skipped == 1
    assert embedder.texts == report.chunks  # only the edited document's chunks were embedded
    assert "basalt" in catalog.open(edited).search("basalt quarries", TOP1)[0].text
    assert "basalt" not in catalog.open(CORPUS_A).search("granite quarries", TOP1)[0].text


def test_failed_build_leaves_no_index_behind(tmp_path: Path, make_embedder) -> None:
    folder = tmp_path / "indexes"
    failing = make_embedder(fail_after=0)
    catalog = IndexCatalog(folder, IngestionConfig(chunk_size=64, chunk_overlap=8), failing)
    with pytest.raises(RuntimeError):
        catalog.ensure(CORPUS_A)
    assert list(folder.glob("*")) == []
