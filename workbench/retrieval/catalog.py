"""`IndexCatalog`: one index per (corpus content, ingestion settings, embedder), in one folder.

A question is answered from the index of exactly its own corpus, so running dataset B can never
change dataset A's retrieval, and two corpora that share a document id never overwrite each
other. Variants that differ only after retrieval share one index; two chunking variants get two
indexes and never rebuild each other's.

Each index is a DuckDB file named `<settings>-<corpus>.duckdb`, the corpus fingerprint that
`ingest` records. It is built under a temporary name and renamed into place when complete, so a
file with a final name is always a finished index, and two processes building the same index
at once both end with the same, whole file. A new corpus under settings already built once
starts from a copy of the newest sibling, so an edited corpus re-embeds only what changed.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

from workbench.core.dataset import Document
from workbench.core.protocols import Embedder
from workbench.core.schema import IngestionConfig
from workbench.retrieval.index import RetrievalIndex
from workbench.retrieval.ingest import IngestReport, ingest, plan_fingerprints
from workbench.retrieval.lexical import DEFAULT_LEXICAL
from workbench.retrieval.sources import load_documents
from workbench.retrieval.store import Store

log = logging.getLogger(__name__)


def _unchanged(path: Path, n_docs: int) -> IngestReport:
    _, chunks = Store(path).counts()
    corpus = path.stem.split("-", 1)[1]
    return IngestReport(
        store=str(path),
        added=0,
        updated=0,
        skipped=n_docs,
        removed=0,
        chunks=0,
        total_docs=n_docs,
        total_chunks=chunks,
        rebuilt=False,
        seconds=0.0,
        corpus_fingerprint=corpus,
    )


def _remove(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + ".wal")):
        leftover.unlink(missing_ok=True)


class IndexCatalog:
    """Builds or finds the index of a corpus under fixed ingestion settings and embedder."""

    def __init__(
        self, folder: str | Path, ingestion: IngestionConfig, embedder: Embedder, lexical: str = DEFAULT_LEXICAL
    ) -> None:
        self.folder = Path(folder)
        self.ingestion = ingestion
        self.embedder = embedder
        self.lexical = lexical
        self.last_report: IngestReport | None = None

    def path_for(self, documents: Sequence[Document]) -> Path:
        settings, corpus = plan_fingerprints(documents, self.ingestion, self.embedder)
        return self.folder / f"{settings}-{corpus}.duckdb"

    def ensure(self, documents: Sequence[Document] | str | Path) -> Path:
        """The path of the complete index of `documents`, building it if it does not exist.
        `last_report` then says what was done."""
        docs = load_documents(documents) if isinstance(documents, str | Path) else list(documents)
        path = self.path_for(docs)
        if path.is_file():
            self.last_report = _unchanged(path, len(docs))
            return path
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{path.stem}.{uuid.uuid4().hex[:8]}.building.duckdb"
        seed = self._newest_sibling(path)
        try:
            if seed is not None:
                shutil.copyfile(seed, tmp)
            self.last_report = ingest(
                docs, store=tmp, ingestion=self.ingestion, embedder=self.embedder, prune=True
            ).model_copy(update={"store": str(path)})
            Store(tmp).checkpoint()
            os.replace(tmp, path)
        finally:
            _remove(tmp)
        log.info("built index %s (%s)", path.name, "from " + seed.name if seed else "from scratch")
        return path

    def open(self, documents: Sequence[Document] | str | Path) -> RetrievalIndex:
        """The loaded index of `documents` (built first if needed)."""
        return RetrievalIndex.open(self.ensure(documents), self.embedder, self.lexical)

    def _newest_sibling(self, path: Path) -> Path | None:
        settings = path.name.split("-", 1)[0]
        siblings = [p for p in self.folder.glob(f"{settings}-*.duckdb") if p != path]
        return max(siblings, key=lambda p: p.stat().st_mtime, default=None)
