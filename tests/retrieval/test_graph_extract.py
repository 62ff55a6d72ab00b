"""Entity and relation extraction: expected spans with exact offsets, stored in a real DuckDB file."""

from __future__ import annotations

import duckdb
import pytest

from workbench.core.dataset import Document
from workbench.core.errors import ConfigError
from workbench.core.schema import IngestionConfig
from workbench.retrieval import ingest
from workbench.retrieval._entities import HeuristicExtractor, normalise
from workbench.retrieval.graph_extract import make_extractor
from workbench.retrieval.ingest import index_fingerprint
from workbench.retrieval.store import fingerprint

TEXT = (
    "The Beatles were an English rock band formed in Liverpool in 1960. "
    "Paris is the capital of France. J. R. R. Tolkien wrote The Lord of the Rings, "
    "and NASA was founded on July 29, 1958."
)


def test_entities_have_exact_offsets_and_kinds() -> None:
    found = HeuristicExtractor().entities(TEXT)
    assert all(TEXT[e.start : e.end] == e.text for e in found)
    got = {(e.text, e.kind) for e in found}
    assert {
        ("Beatles", "name"),
        ("English", "name"),
        ("Liverpool", "name"),
        ("1960", "date"),
        ("Paris", "name"),
        ("France", "name"),
        ("J. R. R. Tolkien", "name"),
        ("Lord of the Rings", "name"),
        ("NASA", "acronym"),
        ("July 29, 1958", "date"),
    } == got
    assert "The" not in {e.text for e in found}  # capitalised only because it starts a sentence


def test_relations_follow_the_patterns_and_point_at_their_text() -> None:
    found, relations = HeuristicExtractor().extract(TEXT, subject=normalise("The Beatles"))
    triples = {(r.head_key, r.relation, r.tail_key) for r in relations}
    assert ("paris", "is the capital of", "france") in triples  # subject-verb-object / "X of Y"
    assert ("j r r tolkien", "wrote", "lord of the rings") in triples
    assert ("beatles", "mentions", "liverpool") in triples  # the document's subject names it
    assert not any(r.tail_key == "1960" and r.relation == "mentions" for r in relations)  # dates are not topics
    for r in relations:
        span = TEXT[r.start : r.end]
        heads = [e for e in found if e.key == r.tail_key and r.start <= e.start and e.end <= r.end]
        assert heads, (r, span)


def test_normalise_is_one_key_for_surface_variants() -> None:
    assert normalise("The Beatles's") == normalise("beatles") == "beatles"
    assert normalise("Beyoncé  Knowles") == "beyonce knowles"


def test_tables_live_in_the_real_duckdb_file(tmp_path, embedder) -> None:
    docs = [
        Document(id="a", title="Alice Smith", text="Alice Smith founded Zentrix Corp in 1999 in Bergholm."),
        Document(id="b", title="Zentrix Corp", text="Zentrix Corp is a maker of valves."),
    ]
    path = tmp_path / "g.duckdb"
    report = ingest(
        docs,
        store=path,
        ingestion=IngestionConfig(chunk_size=64, chunk_overlap=8, graph="heuristic"),
        embedder=embedder,
    )
    assert report.graph_seconds > 0
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute(
            'SELECT e.text, substr(c.text, e.start + 1, e."end" - e.start), e.key FROM entities e '
            "JOIN chunks c USING (chunk_id) ORDER BY e.chunk_id, e.start"
        ).fetchall()
        relations = con.execute("SELECT head_key, relation, tail_key FROM relations").fetchall()
        graph = con.execute("SELECT value FROM meta WHERE key = 'graph'").fetchone()
    finally:
        con.close()
    assert all(text == sliced for text, sliced, _ in rows)
    assert {"alice smith", "zentrix corp", "1999", "bergholm"} <= {key for *_, key in rows}
    assert ("alice smith", "founded", "zentrix corp") in relations
    assert graph == ("heuristic",)
    # Re-ingest without the graph: a different index, and the tables are emptied with the chunks.
    ingest(docs, store=path, ingestion=IngestionConfig(chunk_size=64, chunk_overlap=8), embedder=embedder)
    con = duckdb.connect(str(path), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM entities").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM meta WHERE key = 'graph'").fetchone() == (0,)
    finally:
        con.close()


def test_extractor_is_part_of_the_index_key_only_when_on(embedder) -> None:
    off = IngestionConfig(chunk_size=64, chunk_overlap=8)
    on = off.model_copy(update={"graph": "heuristic"})
    assert index_fingerprint(on, embedder) != index_fingerprint(off, embedder)
    # Off: exactly the parts the key had before the graph existed.
    from workbench.core.implementation import package_version
    from workbench.core.protocols import embedder_identity
    from workbench.retrieval.chunking import SentenceChunker

    chunking = SentenceChunker(off).fingerprint() | {"llama-index-core": package_version("llama-index-core")}
    assert index_fingerprint(off, embedder) == fingerprint(
        {"chunking": chunking, "embedder": embedder_identity(embedder)}
    )


def test_unknown_extractor_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="valid: heuristic"):
        make_extractor("spacy")
