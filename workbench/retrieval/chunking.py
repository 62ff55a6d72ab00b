"""Sentence-aware chunking with llama-index's `SentenceSplitter`, keeping character offsets.

Every chunk records `[start, end)` into its source document and its text is exactly
`document.text[start:end]`, so gold evidence spans can be matched for any chunking. The
splitter's own `start_char_idx`/`end_char_idx` are used when they check out; otherwise the
chunk is located in the document (searching forward from the previous chunk, then allowing
whitespace differences).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from workbench.core.dataset import Document
from workbench.core.errors import DatasetError
from workbench.core.schema import IngestionConfig
from workbench.retrieval._imports import require

CHUNKER_VERSION = 1  # bump when chunking changes in a way that must re-chunk stores


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    chunk_id: str
    doc_id: str
    start: int
    end: int
    text: str


def chunk_id(doc_id: str, index: int) -> str:
    return f"{doc_id}#{index}"


class SentenceChunker:
    """Splits documents into overlapping, sentence-aligned chunks of about `chunk_size` tokens."""

    def __init__(self, config: IngestionConfig) -> None:
        self.config = config
        self._splitter: Any = None

    def fingerprint(self) -> dict[str, Any]:
        cfg = self.config
        return {"chunker": cfg.chunker, "size": cfg.chunk_size, "overlap": cfg.chunk_overlap, "v": CHUNKER_VERSION}

    def _get_splitter(self) -> Any:
        if self._splitter is None:
            node_parser = require("llama_index.core.node_parser", "llama-index-core")
            self._splitter = node_parser.SentenceSplitter(
                chunk_size=self.config.chunk_size,
                chunk_overlap=self.config.chunk_overlap,
                include_metadata=False,
                include_prev_next_rel=False,
            )
        return self._splitter

    def chunk(self, documents: Iterable[Document]) -> Iterator[ChunkRecord]:
        """Chunks for each document, in document order."""
        schema = require("llama_index.core.schema", "llama-index-core")
        splitter = self._get_splitter()
        for doc in documents:
            li_doc = schema.Document(text=doc.text, id_=doc.id)
            nodes = splitter.get_nodes_from_documents([li_doc])
            cursor = 0
            for i, node in enumerate(nodes):
                start, end = locate(doc.text, node.get_content(), node.start_char_idx, node.end_char_idx, cursor)
                cursor = start + 1
                yield ChunkRecord(chunk_id(doc.id, i), doc.id, start, end, doc.text[start:end])


def locate(text: str, chunk: str, start: int | None, end: int | None, cursor: int = 0) -> tuple[int, int]:
    """Offsets of `chunk` in `text`: the splitter's if `text[start:end] == chunk`, else found."""
    if start is not None and end is not None and text[start:end] == chunk:
        return start, end
    found = text.find(chunk, cursor)
    if found < 0:
        found = text.find(chunk)
    if found >= 0:
        return found, found + len(chunk)
    # The splitter may have normalised whitespace between sentences: match it loosely.
    words = chunk.split()
    if not words:
        return (cursor, cursor)
    pattern = re.compile(r"\s+".join(re.escape(w) for w in words))
    match = pattern.search(text, cursor) or pattern.search(text)
    if match is None:
        raise DatasetError(f"chunk not found in its document: {chunk[:60]!r}")
    return match.start(), match.end()
