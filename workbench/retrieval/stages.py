"""The retrieval layer's pipeline stages: `RetrieverStage` and `RerankerStage`."""

from __future__ import annotations

from typing import Any, ClassVar

from workbench.core.protocols import Embedder
from workbench.core.schema import RerankerConfig, RetrievalConfig
from workbench.core.stage import Stage
from workbench.core.state import RequestState
from workbench.retrieval.index import RetrievalIndex
from workbench.retrieval.rerank import Reranker, make_reranker


class RetrieverStage(Stage):
    """Fills `state.chunks` with the `config.top_k` best chunks for `state.query`.

    The cache key includes the index fingerprint, so re-ingesting different content (or
    switching chunking, embedder or lexical backend) invalidates cached retrievals.
    """

    kind: ClassVar[str] = "retriever"
    reads: ClassVar[tuple[str, ...]] = ("query",)
    writes: ClassVar[tuple[str, ...]] = ("chunks",)
    packages: ClassVar[tuple[str, ...]] = ("bm25s", "PyStemmer", "duckdb")

    def __init__(
        self, config: RetrievalConfig, index: RetrievalIndex, embedder: Embedder | None = None, name: str | None = None
    ) -> None:
        super().__init__(config, name)
        self.config: RetrievalConfig = config
        self.index = index
        self.embedder = embedder if embedder is not None else index.embedder

    def config_fingerprint(self) -> Any:
        # Without a graph the key is what it was before `graph` existed, so old caches still hit.
        config = self.config.model_dump(mode="json", exclude={"graph"} if self.config.graph is None else None)
        return {"config": config, "index": self.index.fingerprint}

    def warm_up(self) -> None:
        getattr(self.embedder, "warm_up", lambda: None)()

    def run(self, state: RequestState) -> RequestState:
        chunks = self.index.search(state.query, self.config, self.embedder)
        return state.model_copy(update={"chunks": tuple(chunks)})


class RerankerStage(Stage):
    """Reorders `state.chunks` for `state.query`; keeps the first `config.top_k` if set.

    To re-rank a deeper list, give the retriever a larger `top_k` than the re-ranker's.
    """

    kind: ClassVar[str] = "reranker"
    reads: ClassVar[tuple[str, ...]] = ("query", "chunks")
    writes: ClassVar[tuple[str, ...]] = ("chunks",)
    packages: ClassVar[tuple[str, ...]] = ("sentence-transformers",)

    def __init__(
        self,
        config: RerankerConfig,
        embedder: Embedder | None = None,
        index: RetrievalIndex | None = None,
        name: str | None = None,
        blend: float = 0.5,
    ) -> None:
        super().__init__(config, name)
        self.config: RerankerConfig = config
        self.embedder = embedder
        self.index = index
        self.blend = blend
        self._reranker: Reranker | None = None

    def config_fingerprint(self) -> Any:
        return {"config": self.config.model_dump(mode="json"), "blend": self.blend}

    @property
    def reranker(self) -> Reranker:
        if self._reranker is None:
            self._reranker = make_reranker(self.config, embedder=self.embedder, vectors=self.index, blend=self.blend)
        return self._reranker

    def warm_up(self) -> None:
        self.reranker.warm_up()

    def run(self, state: RequestState) -> RequestState:
        chunks = self.reranker.rerank(state.query, state.chunks)
        if self.config.top_k is not None:
            chunks = chunks[: self.config.top_k]
        return state.model_copy(update={"chunks": tuple(chunks)})
