"""Ingestion into a real DuckDB file: offsets, incremental re-ingest, fingerprints, atomicity."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from workbench.core.dataset import Document
from workbench.core.errors import DatasetError
from workbench.core.schema import IngestionConfig
from workbench.retrieval import ingest
from workbench.retrieval.chunking import SentenceChunker, locate


def _rows(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_chunk_offsets_point_into_the_document(squad, chunking) -> None:
    docs, _ = squad
    by_id = {d.id: d for d in docs}
    chunks = list(SentenceChunker(chunking).chunk(docs))
    assert len(chunks) > len(docs)  # long paragraphs were split
    for c in chunks:
        assert by_id[c.doc_id].text[c.start : c.end] == c.text
        assert c.text.strip()
    # consecutive chunks of one document move forward and overlap at most a little
    first = [c for c in chunks if c.doc_id == docs[0].id]
    assert [c.start for c in first] == sorted(c.start for c in first)
    assert first[0].start == 0


def test_locate_falls_back_when_splitter_offsets_are_wrong() -> None:
    text = "One sentence.  Two   sentence. One sentence."
    assert locate(text, "One sentence.", None, None, cursor=5) == (31, 44)
    assert locate(text, "Two sentence.", 0, 3) == (15, 30)  # whitespace normalised by a splitter


def test_ingest_writes_one_duckdb_file_with_offsets(tmp_path, squad, chunking, embedder) -> None:
    docs, _ = squad
    db = tmp_path / "nested" / "store.duckdb"
    report = ingest(docs[:5], store=db, ingestion=chunking, embedder=embedder)
    assert db.is_file()
    assert (report.added, report.updated, report.skipped) == (5, 0, 0)
    assert report.chunks == report.total_chunks > 5
    rows = _rows(db, 'SELECT d.text, c.start, c."end", c.text FROM chunks c JOIN documents d USING (doc_id)')
    assert len(rows) == report.chunks
    assert all(doc[s:e] == text for doc, s, e, text in rows)
    (n_vectors,) = _rows(db, "SELECT count(*) FROM embeddings e JOIN chunks c USING (chunk_id)")[0]
    assert n_vectors == report.chunks
    assert _rows(db, "SELECT array_length(vector) FROM embeddings LIMIT 1")[0][0] == embedder.dim


def test_reingest_unchanged_does_no_work(tmp_path, squad, chunking, embedder) -> None:
    docs, _ = squad
    db = str(tmp_path / "s.duckdb")
    first = ingest(docs[:6], store=db, ingestion=chunking, embedder=embedder)
    calls, texts = embedder.calls, embedder.texts
    again = ingest(docs[:6], store=db, ingestion=chunking, embedder=embedder)
    assert (again.added, again.updated, again.skipped, again.chunks) == (0, 0, 6, 0)
    assert not again.changed
    assert (embedder.calls, embedder.texts) == (calls, texts)  # embedder never called
    assert again.corpus_fingerprint == first.corpus_fingerprint
    assert again.total_chunks == first.total_chunks


def test_changed_document_is_rechunked_alone(tmp_path, squad, chunking, embedder) -> None:
    docs, _ = squad
    db = str(tmp_path / "s.duckdb")
    first = ingest(docs[:4], store=db, ingestion=chunking, embedder=embedder)
    changed = docs[1].model_copy(update={"text": "A short replacement paragraph about apples."})
    texts_before = embedder.texts
    report = ingest([docs[0], changed, docs[2], docs[3]], store=db, ingestion=chunking, embedder=embedder)
    assert (report.added, report.updated, report.skipped) == (0, 1, 3)
    assert report.chunks == 1 and embedder.texts - texts_before == 1
    assert report.corpus_fingerprint != first.corpus_fingerprint
    rows = _rows(tmp_path / "s.duckdb", f"SELECT text FROM chunks WHERE doc_id = '{changed.id}'")
    assert rows == [("A short replacement paragraph about apples.",)]
    (n_vec,) = _rows(tmp_path / "s.duckdb", "SELECT count(*) FROM embeddings")[0]
    assert n_vec == report.total_chunks


def test_new_chunking_config_rechunks_everything(tmp_path, squad, chunking, embedder) -> None:
    docs, _ = squad
    db = str(tmp_path / "s.duckdb")
    ingest(docs[:3], store=db, ingestion=chunking, embedder=embedder)
    ingest(docs[3:5], store=db, ingestion=chunking, embedder=embedder)  # a second corpus, added
    bigger = IngestionConfig(chunk_size=512, chunk_overlap=0)
    report = ingest(docs[:3], store=db, ingestion=bigger, embedder=embedder)
    assert report.rebuilt
    assert report.updated == 5 and report.total_docs == 5  # stored docs re-chunked too
    assert report.total_chunks == 5  # each paragraph now fits one chunk


def test_new_embedder_rechunks_everything(tmp_path, squad, chunking, embedder, make_embedder) -> None:
    docs, _ = squad
    db = str(tmp_path / "s.duckdb")
    ingest(docs[:3], store=db, ingestion=chunking, embedder=embedder)
    other = make_embedder(dim=32, fingerprint="fake-v2")
    report = ingest(docs[:3], store=db, ingestion=chunking, embedder=other)
    assert report.rebuilt and report.updated == 3 and other.calls > 0
    assert _rows(tmp_path / "s.duckdb", "SELECT DISTINCT array_length(vector) FROM embeddings") == [(32,)]


def test_prune_removes_documents_not_in_the_source(tmp_path, squad, chunking, embedder) -> None:
    docs, _ = squad
    db = str(tmp_path / "s.duckdb")
    ingest(docs[:4], store=db, ingestion=chunking, embedder=embedder)
    report = ingest(docs[:2], store=db, ingestion=chunking, embedder=embedder, prune=True)
    assert report.removed == 2 and report.total_docs == 2
    assert {r[0] for r in _rows(tmp_path / "s.duckdb", "SELECT DISTINCT doc_id FROM chunks")} == {
        docs[0].id,
        docs[1].id,
    }


def test_failed_ingest_leaves_the_previous_store(tmp_path, squad, chunking, embedder, make_embedder) -> None:
    docs, _ = squad
    db = str(tmp_path / "s.duckdb")
    good = ingest(docs[:3], store=db, ingestion=chunking, embedder=embedder)
    failing = make_embedder(fingerprint="fake-v1", fail_after=0)
    with pytest.raises(RuntimeError):
        ingest(docs[:6], store=db, ingestion=chunking, embedder=failing)
    again = ingest(docs[:3], store=db, ingestion=chunking, embedder=embedder)
    assert again.skipped == 3 and again.corpus_fingerprint == good.corpus_fingerprint


def test_interrupted_write_is_rolled_back(tmp_path, squad, chunking, embedder, monkeypatch) -> None:
    from workbench.retrieval.store import Store

    docs, _ = squad
    db = str(tmp_path / "s.duckdb")
    good = ingest(docs[:3], store=db, ingestion=chunking, embedder=embedder)

    def crash(con, values):  # the chunks are written, then the process "dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(Store, "set_meta", staticmethod(crash))
    with pytest.raises(KeyboardInterrupt):
        ingest(docs[:6], store=db, ingestion=chunking, embedder=embedder)
    monkeypatch.undo()
    assert _rows(tmp_path / "s.duckdb", "SELECT count(*) FROM chunks")[0][0] == good.total_chunks
    assert _rows(tmp_path / "s.duckdb", "SELECT count(*) FROM documents")[0][0] == 3


def test_empty_corpus_is_a_dataset_error(tmp_path, chunking, embedder) -> None:
    with pytest.raises(DatasetError, match="empty"):
        ingest([], store=str(tmp_path / "s.duckdb"), ingestion=chunking, embedder=embedder)
    empty_dir = tmp_path / "docs"
    empty_dir.mkdir()
    with pytest.raises(DatasetError, match="no files"):
        ingest(empty_dir, store=str(tmp_path / "s.duckdb"), ingestion=chunking, embedder=embedder)
    blank = tmp_path / "corpus.jsonl"
    blank.write_text("\n")
    with pytest.raises(DatasetError, match="no rows"):
        ingest(blank, store=str(tmp_path / "s.duckdb"), ingestion=chunking, embedder=embedder)


def test_duplicate_ids_are_a_dataset_error(tmp_path, chunking, embedder) -> None:
    docs = [Document(id="a", text="x y z"), Document(id="a", text="other")]
    with pytest.raises(DatasetError, match="duplicate"):
        ingest(docs, store=str(tmp_path / "s.duckdb"), ingestion=chunking, embedder=embedder)


def test_ingest_from_jsonl_and_folder(tmp_path, squad, chunking, embedder, write_corpus) -> None:
    docs, _ = squad
    corpus = write_corpus(tmp_path / "corpus.jsonl", docs[:3])
    report = ingest(corpus, store=str(tmp_path / "a.duckdb"), ingestion=chunking, embedder=embedder)
    assert report.added == 3

    folder = tmp_path / "notes"
    (folder / "sub").mkdir(parents=True)
    (folder / "alpha.txt").write_text(docs[0].text)
    (folder / "sub" / "beta.md").write_text("# Beta\n\nBeta is the second letter.\n")
    report = ingest(folder, store=str(tmp_path / "b.duckdb"), ingestion=chunking, embedder=embedder)
    assert report.added == 2
    ids = {r[0] for r in _rows(tmp_path / "b.duckdb", "SELECT doc_id FROM documents")}
    assert ids == {"alpha.txt", "sub/beta.md"}
    rows = _rows(
        tmp_path / "b.duckdb", 'SELECT d.text, c.start, c."end", c.text FROM chunks c JOIN documents d USING (doc_id)'
    )
    assert all(doc[s:e] == text for doc, s, e, text in rows)
