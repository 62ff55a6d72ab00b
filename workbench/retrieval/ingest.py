"""Ingestion: documents -> sentence chunks with offsets -> embeddings -> one DuckDB store.

Incremental by content hash: unchanged documents cost nothing (the embedder is not called),
changed documents have their chunks replaced, and a change of chunking config or embedder
re-chunks everything. One ingest is one transaction.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from workbench.core.dataset import Document
from workbench.core.errors import DatasetError
from workbench.core.implementation import package_version
from workbench.core.protocols import Embedder, embedder_identity
from workbench.core.schema import IngestionConfig
from workbench.retrieval.chunking import SentenceChunker
from workbench.retrieval.graph_extract import extract_tables, make_extractor, write_tables
from workbench.retrieval.sources import load_documents
from workbench.retrieval.store import Store, content_hash, corpus_fingerprint, fingerprint

log = logging.getLogger(__name__)

EMBED_SLICE = 2048  # texts per embed() call: bounds memory, keeps the embedder's batches full


class IngestReport(BaseModel):
    """What one ingest did. `chunks` counts chunks written by this run."""

    model_config = ConfigDict(frozen=True)

    store: str
    added: int
    updated: int
    skipped: int
    removed: int
    chunks: int
    total_docs: int
    total_chunks: int
    rebuilt: bool
    seconds: float
    corpus_fingerprint: str
    graph_seconds: float = 0.0  # of `seconds`, spent extracting entities and relations

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed or self.rebuilt)


def _check_ids(docs: Sequence[Document]) -> None:
    seen: set[str] = set()
    for d in docs:
        if d.id in seen:
            raise DatasetError(f"duplicate document id {d.id!r} in the corpus")
        seen.add(d.id)


def _embed(embedder: Embedder, texts: list[str]) -> np.ndarray:
    parts = [embedder.embed(texts[i : i + EMBED_SLICE]) for i in range(0, len(texts), EMBED_SLICE)]
    vectors = np.concatenate(parts) if parts else np.zeros((0, embedder.dim), dtype=np.float32)
    if vectors.shape != (len(texts), embedder.dim):
        raise DatasetError(f"embedder returned shape {vectors.shape} for {len(texts)} texts")
    return vectors.astype(np.float32, copy=False)


def index_fingerprint(ingestion: IngestionConfig, embedder: Embedder) -> str:
    """What decides the chunks and vectors of any document: chunking settings, the splitter's
    package version and the embedder."""
    chunking = SentenceChunker(ingestion).fingerprint() | {"llama-index-core": package_version("llama-index-core")}
    parts: dict[str, object] = {"chunking": chunking, "embedder": embedder_identity(embedder)}
    if ingestion.graph is not None:
        # Only when on: stores built without a graph keep the fingerprint they always had.
        parts["graph"] = make_extractor(ingestion.graph).fingerprint()
    return fingerprint(parts)


def plan_fingerprints(docs: Sequence[Document], ingestion: IngestionConfig, embedder: Embedder) -> tuple[str, str]:
    """(index fingerprint, corpus fingerprint) that an ingest of exactly `docs` would record."""
    index_fp = index_fingerprint(ingestion, embedder)
    return index_fp, corpus_fingerprint(index_fp, {d.id: content_hash(d) for d in docs})


def ingest(
    documents: Sequence[Document] | str | Path,
    *,
    store: str | Path,
    ingestion: IngestionConfig,
    embedder: Embedder,
    prune: bool = False,
) -> IngestReport:
    """Bring the store at `store` up to date with `documents` (or the corpus/folder at that path).

    With `prune`, stored documents absent from `documents` are removed; otherwise ingest adds
    to what is there, so several corpora can share one store.
    """
    started = time.perf_counter()
    docs = load_documents(documents) if isinstance(documents, str | Path) else list(documents)
    if not docs:
        raise DatasetError("the corpus is empty, nothing to ingest")
    _check_ids(docs)
    path = str(store)
    chunker = SentenceChunker(ingestion)
    emb_id = embedder_identity(embedder)
    index_fp = index_fingerprint(ingestion, embedder)

    db = Store(path)
    con = db.connect()
    try:
        meta = db.meta(con)
        existing = db.doc_hashes(con)
        rebuilt = meta.get("index_fingerprint") != index_fp
        incoming = {d.id for d in docs}
        hashes = {d.id: content_hash(d) for d in docs}
        added = [d for d in docs if d.id not in existing]
        updated = [d for d in docs if d.id in existing and (rebuilt or existing[d.id] != hashes[d.id])]
        removed = sorted(set(existing) - incoming) if prune else []
        carried: list[Document] = []
        if rebuilt and not prune:
            # Documents stored by an earlier ingest still need chunks under the new config.
            carried = _stored_documents(con, sorted(set(existing) - incoming))
        todo = added + updated + carried
        final = {k: v for k, v in existing.items() if k not in removed}
        final.update({d.id: content_hash(d) for d in todo})
        corpus_fp = corpus_fingerprint(index_fp, final)

        n_chunks = 0
        graph_seconds = 0.0
        if todo or removed or rebuilt:
            chunks = list(chunker.chunk(todo))
            graph_rows = None
            if ingestion.graph is not None:
                t0 = time.perf_counter()
                titles = {d.id: d.title for d in todo}
                graph_rows = extract_tables(make_extractor(ingestion.graph), chunks, titles)
                graph_seconds = time.perf_counter() - t0
            vectors = _embed(embedder, [c.text for c in chunks])
            n_chunks = len(chunks)
            with db.transaction(con):
                if rebuilt:
                    db.reset_index(con, embedder.dim)
                db.remove_docs(con, [d.id for d in updated + carried] + removed)
                db.add(con, todo, chunks, vectors)
                if graph_rows is not None:
                    write_tables(con, *graph_rows)
                db.set_meta(
                    con,
                    {
                        "index_fingerprint": index_fp,
                        "corpus_fingerprint": corpus_fp,
                        "dim": str(embedder.dim),
                        "embedder": emb_id,
                        "chunking": json.dumps(chunker.fingerprint(), sort_keys=True),
                        "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    },
                )
                if ingestion.graph is not None:
                    db.set_meta(con, {"graph": ingestion.graph})
                else:
                    con.execute("DELETE FROM meta WHERE key = 'graph'")
        total_chunks = con.execute("SELECT count(*) FROM chunks").fetchone()[0]
    finally:
        con.close()
    report = IngestReport(
        store=str(path),
        added=len(added),
        updated=len(updated) + len(carried),
        skipped=len(docs) - len(added) - len(updated),
        removed=len(removed),
        chunks=n_chunks,
        total_docs=len(final),
        total_chunks=int(total_chunks),
        rebuilt=rebuilt,
        seconds=time.perf_counter() - started,
        corpus_fingerprint=corpus_fp,
        graph_seconds=graph_seconds,
    )
    log.info("ingest %s", report.model_dump())
    return report


def _stored_documents(con: Any, doc_ids: list[str]) -> list[Document]:
    if not doc_ids:
        return []
    rows = con.execute(
        "SELECT doc_id, text, source, title FROM documents WHERE list_contains(?, doc_id)", [doc_ids]
    ).fetchall()
    return [Document(id=r[0], text=r[1], source=r[2], title=r[3]) for r in rows]
