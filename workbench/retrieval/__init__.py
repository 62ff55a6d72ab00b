"""Retrieval layer: ingestion into one DuckDB store, BM25/dense/hybrid search, re-ranking.

Heavy dependencies (llama-index, bm25s, duckdb extensions, sentence-transformers) are imported
on first use, so importing this package is cheap.
"""

from workbench.retrieval.hits import evidence_hit, first_hit_rank
from workbench.retrieval.index import RetrievalIndex
from workbench.retrieval.ingest import IngestReport, ingest
from workbench.retrieval.stages import RerankerStage, RetrieverStage

__all__ = [
    "IngestReport",
    "RerankerStage",
    "RetrievalIndex",
    "RetrieverStage",
    "evidence_hit",
    "first_hit_rank",
    "ingest",
]
