"""`RetrievalIndex`: a store loaded once into memory, answering BM25, dense and hybrid queries.

Dense search is exact cosine over the (n, dim) matrix of normalised vectors: one matrix-vector
product, about a millisecond for 13k chunks, with no approximation and nothing to build. DuckDB's
vss HNSW was measured against it (bench_retrieval.py): slower (p50 3.5 ms vs 1.3 ms), approximate
(98.8% overlap at top-20) and 6 s to build, so it is not used.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from workbench.core.errors import ConfigError
from workbench.core.protocols import Embedder
from workbench.core.schema import RetrievalConfig
from workbench.core.state import Chunk
from workbench.retrieval import fusion
from workbench.retrieval.graph import EntityGraph
from workbench.retrieval.lexical import DEFAULT_LEXICAL, LexicalIndex, build_lexical, top_k
from workbench.retrieval.store import IndexData, Store

log = logging.getLogger(__name__)

Ranking = list[tuple[int, float]]


class RetrievalIndex:
    """Chunks, their vectors and a lexical index, loaded from one store; read-only, thread-safe."""

    def __init__(
        self, data: IndexData, lexical: LexicalIndex, embedder: Embedder, graph: EntityGraph | None = None
    ) -> None:
        self.data = data
        self.lexical = lexical
        self.embedder = embedder
        self.graph = graph  # entities and relations, if the store was ingested with a graph
        self._row_of = {cid: i for i, cid in enumerate(data.chunk_ids)}

    @classmethod
    def open(cls, store: str | Path, embedder: Embedder, lexical: str = DEFAULT_LEXICAL) -> RetrievalIndex:
        """Load the index file at `store` and build the lexical index."""
        db = Store(store)
        started = time.perf_counter()
        data = db.load()
        index = build_lexical(lexical, data, db)
        graph = EntityGraph.load(db.path, {cid: i for i, cid in enumerate(data.chunk_ids)})
        log.info("opened %s: %d chunks in %.2fs (%s)", db.path, len(data), time.perf_counter() - started, lexical)
        return cls(data, index, embedder, graph)

    @property
    def fingerprint(self) -> str:
        """Changes whenever the retrievable content changes (documents, chunking, embedder)."""
        return f"{self.data.corpus_fingerprint}:{self.lexical.name}"

    def __len__(self) -> int:
        return len(self.data)

    # -- primitive searches -----------------------------------------------------------------

    def embed_query(self, query: str, embedder: Embedder | None = None) -> np.ndarray:
        return np.asarray((embedder or self.embedder).embed([query])[0], dtype=np.float32)

    def bm25(self, query: str, k: int) -> Ranking:
        return self.lexical.search(query, k)

    def dense(self, query_vector: np.ndarray, k: int) -> Ranking:
        if len(self.data) == 0:
            return []
        # einsum, not `@`: BLAS would start its own threads right after torch's OpenMP pool has
        # encoded the query, and on 2 cores the two pools fight (p95 ~100 ms instead of ~13 ms).
        return top_k(np.einsum("ij,j->i", self.data.vectors, query_vector), k, positive=False)

    def vectors_for(self, chunk_ids: list[str]) -> np.ndarray | None:
        """Stored vectors of these chunks, or None if any is not in this index."""
        if any(cid not in self._row_of for cid in chunk_ids):
            return None
        return self.data.vectors[[self._row_of[cid] for cid in chunk_ids]]

    def chunk(self, row: int, score: float, scores: dict[str, float]) -> Chunk:
        d = self.data
        return Chunk(
            chunk_id=d.chunk_ids[row],
            doc_id=d.doc_ids[row],
            text=d.texts[row],
            start=int(d.starts[row]),
            end=int(d.ends[row]),
            score=score,
            scores=scores,
        )

    # -- the query ------------------------------------------------------------------------

    def search(self, query: str, config: RetrievalConfig, embedder: Embedder | None = None) -> list[Chunk]:
        """The `config.top_k` best chunks for `query` under `config.mode` and `config.fusion`.

        `embedder` (default: the index's) encodes the query; it must be the one the store was
        built with.
        """
        try:
            mode = self._MODES[config.mode]
        except KeyError:
            raise ConfigError(f"unknown retrieval mode {config.mode!r}; valid: {', '.join(self._MODES)}") from None
        return mode(self, query, config, embedder)

    def _search_bm25(self, query: str, config: RetrievalConfig, embedder: Embedder | None) -> list[Chunk]:
        ranked = self.bm25(query, config.candidates)
        return [self.chunk(r, s, {"bm25": s}) for r, s in ranked[: config.top_k]]

    def _search_dense(self, query: str, config: RetrievalConfig, embedder: Embedder | None) -> list[Chunk]:
        ranked = self.dense(self.embed_query(query, embedder), config.candidates)
        return [self.chunk(r, s, {"dense": s}) for r, s in ranked[: config.top_k]]

    def graph_search(self, query: str, query_vector: np.ndarray, config: RetrievalConfig) -> Ranking:
        """The graph retriever's ranking (`graph.py`); `config.graph` must be set."""
        assert config.graph is not None
        if self.graph is None:
            raise ConfigError(
                "retrieval.graph is set but this index has no entity graph; set ingestion.graph and re-ingest"
            )
        return self.graph.rank(query, query_vector, self.data.vectors, config.graph, config.candidates)

    def _search_hybrid(self, query: str, config: RetrievalConfig, embedder: Embedder | None) -> list[Chunk]:
        query_vector = self.embed_query(query, embedder)
        rankings = {"bm25": self.bm25(query, config.candidates), "dense": self.dense(query_vector, config.candidates)}
        weights = {"bm25": config.bm25_weight, "dense": 1.0 - config.bm25_weight}
        if config.graph is not None:
            rankings["graph"] = self.graph_search(query, query_vector, config)
            weights["graph"] = config.graph.weight
        if config.fusion == "rrf":
            # bm25 and dense weigh 1 in RRF, as they always have; only the graph has a weight.
            rrf_weights = [weights[name] if name == "graph" else 1.0 for name in rankings]
            fused = fusion.rrf(list(rankings.values()), k=config.rrf_k, weights=rrf_weights)
        else:
            fused = fusion.weighted(list(rankings.values()), list(weights.values()))
        by_name = {name: dict(ranking) for name, ranking in rankings.items()}
        out = []
        for row, score in fused[: config.top_k]:
            scores = {"fused": score}
            scores.update({name: found[row] for name, found in by_name.items() if row in found})
            out.append(self.chunk(row, score, scores))
        return out

    _MODES = {"bm25": _search_bm25, "dense": _search_dense, "hybrid": _search_hybrid}
