"""Entity and relation extraction at ingest, into two DuckDB tables of the index's store.

    entities(chunk_id, start, "end", text, key, kind)           -- offsets into chunks.text
    relations(head_key, relation, tail_key, chunk_id, start, "end")

The tables are created with the store (`store.py`) and deleted with their chunks. Extraction
runs only when `ingestion.graph` names an extractor; its fingerprint then joins the index
fingerprint, so changing the extractor rebuilds the index, and leaving it off leaves every
existing fingerprint (and so every cache key) as it was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from workbench.core.registry import Registry
from workbench.retrieval._entities import Entity, Relation, normalise
from workbench.retrieval._imports import require
from workbench.retrieval.chunking import ChunkRecord

EXTRACTORS = Registry("entity extractor", {"heuristic": "workbench.retrieval._entities:HeuristicExtractor"})


class Extractor(Protocol):
    name: str

    def fingerprint(self) -> dict[str, str]: ...

    def entities(self, text: str) -> list[Entity]: ...

    def extract(self, text: str, subject: str | None = None) -> tuple[list[Entity], list[Relation]]: ...


def make_extractor(name: str) -> Extractor:
    """The registered extractor `name` (a `ConfigError` lists the valid names)."""
    extractor: Extractor = EXTRACTORS.resolve(name)()
    return extractor


def extract_tables(
    extractor: Extractor, chunks: Sequence[ChunkRecord], titles: Mapping[str, str | None]
) -> tuple[Any, Any]:
    """(entities, relations) of `chunks` as Arrow tables; `titles` maps doc id -> title, whose
    key is the subject of that document's `mentions` relations."""
    pa = require("pyarrow", "pyarrow")
    ents: dict[str, list[Any]] = {k: [] for k in ("chunk_id", "start", "end", "text", "key", "kind")}
    rels: dict[str, list[Any]] = {k: [] for k in ("head_key", "relation", "tail_key", "chunk_id", "start", "end")}
    for chunk in chunks:
        title = titles.get(chunk.doc_id)
        found, relations = extractor.extract(chunk.text, normalise(title) if title else None)
        for e in found:
            for col, value in zip(ents, (chunk.chunk_id, e.start, e.end, e.text, e.key, e.kind), strict=True):
                ents[col].append(value)
        for r in relations:
            values = (r.head_key, r.relation, r.tail_key, chunk.chunk_id, r.start, r.end)
            for col, value in zip(rels, values, strict=True):
                rels[col].append(value)
    int_cols = {"start", "end"}
    entities = pa.table({k: pa.array(v, pa.int32() if k in int_cols else pa.string()) for k, v in ents.items()})
    relations_table = pa.table({k: pa.array(v, pa.int32() if k in int_cols else pa.string()) for k, v in rels.items()})
    return entities, relations_table


def write_tables(con: Any, entities: Any, relations: Any) -> None:
    """Append extracted rows (inside the ingest's transaction; `Store` created the tables)."""
    for name, table, target in (("_entities", entities, "entities"), ("_relations", relations, "relations")):
        con.register(name, table)
        try:
            con.execute(f"INSERT INTO {target} SELECT * FROM {name}")
        finally:
            con.unregister(name)
