"""One DuckDB file holding documents, chunks, their embeddings and what built them.

Tables:

    documents(doc_id, content_hash, text, source, title)
    chunks(chunk_id, doc_id, start, "end", text)      -- offsets into documents.text
    embeddings(chunk_id, vector FLOAT[dim])
    meta(key, value)                                   -- fingerprints, dim, counts
    entities(chunk_id, start, "end", text, key, kind)  -- offsets into chunks.text; empty unless
    relations(head_key, relation, tail_key, chunk_id, start, "end")  -- ingestion.graph is set

`meta.index_fingerprint` hashes the chunking config and the embedder identity: when it changes
every document is re-chunked and re-embedded. `meta.corpus_fingerprint` hashes that plus every
document's content hash; it changes whenever what a query can retrieve changes, so caches keyed
on it go stale exactly when they should.

All writes of one ingest happen in one transaction, together with the new fingerprints: a
crash mid-ingest leaves the previous, complete store.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.dataset import Document
from workbench.core.errors import DatasetError
from workbench.retrieval._imports import require
from workbench.retrieval.chunking import ChunkRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR, value VARCHAR);
CREATE TABLE IF NOT EXISTS documents (doc_id VARCHAR, content_hash VARCHAR, text VARCHAR, source VARCHAR,
                                      title VARCHAR);
CREATE TABLE IF NOT EXISTS chunks (chunk_id VARCHAR, doc_id VARCHAR, start INTEGER, "end" INTEGER, text VARCHAR);
CREATE TABLE IF NOT EXISTS entities (chunk_id VARCHAR, start INTEGER, "end" INTEGER, text VARCHAR, key VARCHAR,
                                     kind VARCHAR);
CREATE TABLE IF NOT EXISTS relations (head_key VARCHAR, relation VARCHAR, tail_key VARCHAR, chunk_id VARCHAR,
                                      start INTEGER, "end" INTEGER);
"""
# Rows keyed by chunk id that go with their chunk (entities and relations: `graph_extract.py`).
_PER_CHUNK = ("embeddings", "entities", "relations")


def content_hash(doc: Document) -> str:
    payload = json.dumps([doc.text, doc.source, doc.title], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def fingerprint(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def corpus_fingerprint(index_fp: str, hashes: dict[str, str]) -> str:
    digest = hashlib.sha256(index_fp.encode())
    for doc_id in sorted(hashes):
        digest.update(f"\x00{doc_id}\x01{hashes[doc_id]}".encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class IndexData:
    """Everything a query needs, loaded once: chunk columns and the (n, dim) vector matrix."""

    chunk_ids: list[str]
    doc_ids: list[str]
    starts: np.ndarray
    ends: np.ndarray
    texts: list[str]
    vectors: np.ndarray
    corpus_fingerprint: str

    def __len__(self) -> int:
        return len(self.chunk_ids)


class Store:
    """The DuckDB file at `path` (parent folders are created)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def connect(self, read_only: bool = False) -> Any:
        duckdb = require("duckdb", "duckdb", extra="retrieval")
        if read_only and not self.path.is_file():
            raise DatasetError(f"{self.path}: no index here; ingest a corpus first")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.ConnectionException as exc:
            # DuckDB allows one access mode per file per process: an open index (read-only)
            # and an ingest (read-write) cannot share a process at the same time.
            mode = "read-only" if read_only else "read-write"
            raise DatasetError(f"{self.path}: cannot open {mode}, it is open in another mode ({exc})") from exc
        if not read_only:
            con.execute(_SCHEMA)
        return con

    @staticmethod
    @contextmanager
    def transaction(con: Any) -> Iterator[Any]:
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the file, so the file alone is the whole index."""
        con = self.connect()
        try:
            con.execute("CHECKPOINT")
        finally:
            con.close()

    # -- reads -----------------------------------------------------------------------------

    def counts(self) -> tuple[int, int]:
        """(documents, chunks) stored."""
        con = self.connect(read_only=True)
        try:
            docs = con.execute("SELECT count(*) FROM documents").fetchone()[0]
            chunks = con.execute("SELECT count(*) FROM chunks").fetchone()[0]
        finally:
            con.close()
        return int(docs), int(chunks)

    @staticmethod
    def meta(con: Any) -> dict[str, str]:
        return dict(con.execute("SELECT key, value FROM meta").fetchall())

    @staticmethod
    def doc_hashes(con: Any) -> dict[str, str]:
        return dict(con.execute("SELECT doc_id, content_hash FROM documents").fetchall())

    def load(self) -> IndexData:
        """Chunks joined with their vectors, in a stable order."""
        con = self.connect(read_only=True)
        try:
            meta = self.meta(con)
            if "corpus_fingerprint" not in meta:
                raise DatasetError(f"{self.path}: the index is empty or incomplete; ingest a corpus first")
            table = con.execute(
                'SELECT c.chunk_id, c.doc_id, c.start, c."end", c.text, e.vector FROM chunks c '
                "JOIN embeddings e USING (chunk_id) ORDER BY c.doc_id, c.start, c.chunk_id"
            ).to_arrow_table()
        finally:
            con.close()
        dim = int(meta["dim"])
        vectors = table.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        return IndexData(
            chunk_ids=table.column("chunk_id").to_pylist(),
            doc_ids=table.column("doc_id").to_pylist(),
            starts=table.column("start").to_numpy(),
            ends=table.column("end").to_numpy(),
            texts=table.column("text").to_pylist(),
            vectors=np.ascontiguousarray(vectors.reshape(-1, dim), dtype=np.float32),
            corpus_fingerprint=meta["corpus_fingerprint"],
        )

    # -- writes (call inside `transaction`) ---------------------------------------------------

    @staticmethod
    def reset_index(con: Any, dim: int) -> None:
        """Drop every chunk and vector, and make the embeddings table fit `dim`."""
        con.execute("DELETE FROM chunks")
        con.execute("DELETE FROM entities")
        con.execute("DELETE FROM relations")
        con.execute("DROP TABLE IF EXISTS embeddings")
        con.execute(f"CREATE TABLE embeddings (chunk_id VARCHAR, vector FLOAT[{int(dim)}])")

    @staticmethod
    def remove_docs(con: Any, doc_ids: Sequence[str]) -> None:
        if not doc_ids:
            return
        pa = require("pyarrow", "pyarrow")
        gone = pa.table({"doc_id": pa.array(list(doc_ids), pa.string())})
        con.register("_gone", gone)
        try:
            for table in _PER_CHUNK:
                con.execute(
                    f"DELETE FROM {table} WHERE chunk_id IN "
                    "(SELECT chunk_id FROM chunks WHERE doc_id IN (SELECT doc_id FROM _gone))"
                )
            con.execute("DELETE FROM chunks WHERE doc_id IN (SELECT doc_id FROM _gone)")
            con.execute("DELETE FROM documents WHERE doc_id IN (SELECT doc_id FROM _gone)")
        finally:
            con.unregister("_gone")

    @staticmethod
    def add(con: Any, docs: Sequence[Document], chunks: Sequence[ChunkRecord], vectors: np.ndarray) -> None:
        """Insert documents, their chunks and one vector per chunk (rows of `vectors`)."""
        pa = require("pyarrow", "pyarrow")
        documents = pa.table(
            {
                "doc_id": pa.array([d.id for d in docs], pa.string()),
                "content_hash": pa.array([content_hash(d) for d in docs], pa.string()),
                "text": pa.array([d.text for d in docs], pa.string()),
                "source": pa.array([d.source for d in docs], pa.string()),
                "title": pa.array([d.title for d in docs], pa.string()),
            }
        )
        chunk_table = pa.table(
            {
                "chunk_id": pa.array([c.chunk_id for c in chunks], pa.string()),
                "doc_id": pa.array([c.doc_id for c in chunks], pa.string()),
                "start": pa.array([c.start for c in chunks], pa.int32()),
                "end": pa.array([c.end for c in chunks], pa.int32()),
                "text": pa.array([c.text for c in chunks], pa.string()),
            }
        )
        dim = vectors.shape[1] if vectors.ndim == 2 else 0
        flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).ravel(), pa.float32())
        vector_table = pa.table(
            {
                "chunk_id": chunk_table.column("chunk_id"),
                "vector": pa.FixedSizeListArray.from_arrays(flat, dim),
            }
        )
        for name, table, target in (
            ("_docs", documents, "documents"),
            ("_chunks", chunk_table, "chunks"),
            ("_vectors", vector_table, "embeddings"),
        ):
            con.register(name, table)
            try:
                con.execute(f"INSERT INTO {target} SELECT * FROM {name}")
            finally:
                con.unregister(name)

    @staticmethod
    def set_meta(con: Any, values: dict[str, str]) -> None:
        for key, value in values.items():
            con.execute("DELETE FROM meta WHERE key = ?", [key])
            con.execute("INSERT INTO meta VALUES (?, ?)", [key, value])
