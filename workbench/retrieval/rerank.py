"""Re-rankers: reorder retrieved chunks for a query.

- `none`: pass through.
- `embedding`: cosine of the query and chunk vectors (the stored ones when the chunk is in the
  index, else freshly embedded), blended with the min-max normalised retrieval score:
  `rerank = blend * cosine + (1 - blend) * retrieval`. `blend=1` is pure cosine.
- `cross_encoder`: `sentence_transformers.CrossEncoder` from local weights (`source`), scoring
  (query, chunk) pairs directly.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from workbench.core.errors import ConfigError
from workbench.core.offline import offline_environment
from workbench.core.protocols import Embedder
from workbench.core.registry import Registry
from workbench.core.resources import resolve_source
from workbench.core.schema import RerankerConfig
from workbench.core.state import Chunk
from workbench.retrieval._imports import require
from workbench.retrieval.fusion import minmax


class VectorSource(Protocol):
    def vectors_for(self, chunk_ids: list[str]) -> np.ndarray | None: ...


class Reranker(Protocol):
    def rerank(self, query: str, chunks: Sequence[Chunk]) -> list[Chunk]: ...

    def warm_up(self) -> None: ...


def _with_score(chunks: Sequence[Chunk], scores: Sequence[float]) -> list[Chunk]:
    rescored = [
        c.model_copy(update={"score": float(s), "scores": {**c.scores, "rerank": float(s)}})
        for c, s in zip(chunks, scores, strict=True)
    ]
    order = sorted(range(len(rescored)), key=lambda i: (-rescored[i].score, i))
    return [rescored[i] for i in order]


class PassThrough:
    def __init__(self, config: RerankerConfig, **_: Any) -> None:
        self.config = config

    def warm_up(self) -> None:
        pass

    def rerank(self, query: str, chunks: Sequence[Chunk]) -> list[Chunk]:
        return list(chunks)


class EmbeddingReranker:
    """Cosine of query and chunk embeddings, blended with the retrieval score."""

    def __init__(
        self,
        config: RerankerConfig,
        embedder: Embedder | None = None,
        vectors: VectorSource | None = None,
        blend: float = 0.5,
        **_: Any,
    ) -> None:
        if embedder is None:
            raise ConfigError("the embedding reranker needs an embedder")
        if not 0.0 <= blend <= 1.0:
            raise ConfigError("reranker blend must be within [0, 1]")
        self.config = config
        self.embedder = embedder
        self.vectors = vectors
        self.blend = blend

    def warm_up(self) -> None:
        getattr(self.embedder, "warm_up", lambda: None)()

    def rerank(self, query: str, chunks: Sequence[Chunk]) -> list[Chunk]:
        if not chunks:
            return []
        ids = [c.chunk_id for c in chunks]
        stored = self.vectors.vectors_for(ids) if self.vectors is not None else None
        chunk_vecs = stored if stored is not None else self.embedder.embed([c.text for c in chunks])
        cosine = np.einsum("ij,j->i", chunk_vecs, np.asarray(self.embedder.embed([query])[0], dtype=np.float32))
        prior = minmax([(i, c.score) for i, c in enumerate(chunks)])
        scores = [self.blend * float(cosine[i]) + (1 - self.blend) * prior[i] for i in range(len(chunks))]
        return _with_score(chunks, scores)


class CrossEncoderReranker:
    """`sentence_transformers.CrossEncoder` on CPU, loaded lazily from `config.source`."""

    def __init__(self, config: RerankerConfig, **_: Any) -> None:
        if config.source is None:
            raise ConfigError("a cross_encoder reranker needs 'source'")
        self.config = config
        self._model: Any = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        self._load()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                st = require("sentence_transformers", "sentence-transformers", extra="local")
                assert self.config.source is not None
                offline_environment()
                self._model = st.CrossEncoder(str(resolve_source(self.config.source)), device="cpu")
            return self._model

    def rerank(self, query: str, chunks: Sequence[Chunk]) -> list[Chunk]:
        if not chunks:
            return []
        model = self._load()
        with self._lock:
            scores = model.predict([(query, c.text) for c in chunks], show_progress_bar=False)
        return _with_score(chunks, [float(s) for s in np.ravel(scores)])


RERANKERS = Registry(
    "reranker",
    {
        "none": "workbench.retrieval.rerank:PassThrough",
        "embedding": "workbench.retrieval.rerank:EmbeddingReranker",
        "cross_encoder": "workbench.retrieval.rerank:CrossEncoderReranker",
    },
)


def make_reranker(config: RerankerConfig, **deps: Any) -> Reranker:
    reranker: Reranker = RERANKERS.resolve(config.kind)(config, **deps)
    return reranker
