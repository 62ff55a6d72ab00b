"""What the variants of a sweep share in one process: one event loop, one stage cache, one
embedder per embedder config, one loaded model per endpoint config (one set of GGUF weights
per file), and one index per (corpus, ingestion settings, embedder).

Each variant still gets its own pipeline and `EndpointPool` (its own breakers, retries and
fallbacks, as its config says), built over these shared parts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.aio import LoopThread
from workbench.core.dataset import Document
from workbench.core.paths import resolve_model_paths
from workbench.core.protocols import ChatModel, Embedder
from workbench.core.schema import ModelEndpoint, PipelineConfig
from workbench.core.stage import Pipeline, StageCache

if TYPE_CHECKING:
    from workbench.models.endpoints import EndpointPool
    from workbench.retrieval import RetrievalIndex
    from workbench.retrieval.catalog import IndexCatalog


def _key(value: Any) -> str:
    dump = value.model_dump(mode="json") if hasattr(value, "model_dump") else value
    return json.dumps(dump, sort_keys=True, default=str)


class SharedResources:
    """Shared parts, built lazily. `embedder` and `models` (endpoint name -> model) replace
    the real ones, as in `Workbench`; tests hand in fakes this way."""

    def __init__(
        self,
        root: str | Path,
        *,
        cache: StageCache | None,
        embedder: Embedder | None = None,
        models: Mapping[str, ChatModel] | None = None,
        loop: LoopThread | None = None,
    ) -> None:
        self.root = Path(root)
        self.cache = cache
        self.loop = loop or LoopThread()
        self._own_loop = loop is None
        self._embedder_override = embedder
        self._model_overrides = dict(models or {})
        self._embedders: dict[str, Embedder] = {}
        self._catalogs: dict[str, IndexCatalog] = {}
        self._indexes: dict[Path, RetrievalIndex] = {}
        self._built: dict[tuple[str, int], tuple[Sequence[Document], Path]] = {}
        self._models: dict[str, ChatModel] = {}
        self._pools: dict[str, EndpointPool] = {}
        self._pipelines: dict[tuple[str, str, bool], Pipeline] = {}
        self._weights: Any = None

    def resolve(self, path: str | Path) -> Path:
        return self.root / Path(path).expanduser()

    def embedder(self, config: PipelineConfig) -> Embedder:
        if self._embedder_override is not None:
            return self._embedder_override
        resolved = resolve_model_paths(config, self.root).embedder
        key = _key(resolved)
        if key not in self._embedders:
            from workbench.models.embedder import SentenceTransformerEmbedder

            self._embedders[key] = SentenceTransformerEmbedder(resolved)
        return self._embedders[key]

    def index(self, config: PipelineConfig, documents: Sequence[Document]) -> RetrievalIndex:
        """The index of `documents` under the variant's ingestion settings and embedder."""
        from workbench.retrieval import RetrievalIndex
        from workbench.retrieval.catalog import IndexCatalog

        embedder = self.embedder(config)
        key = _key([config.store.indexes, config.ingestion, config.embedder])
        if key not in self._catalogs:
            self._catalogs[key] = IndexCatalog(self.resolve(config.store.indexes), config.ingestion, embedder)
        # A corpus is hashed once per sweep, not once per variant.
        built = self._built.get((key, id(documents)))
        path = built[1] if built is not None else self._catalogs[key].ensure(documents)
        self._built[(key, id(documents))] = (documents, path)  # holds the list, so its id stays its own
        if path not in self._indexes:
            self._indexes[path] = RetrievalIndex.open(path, embedder)
        return self._indexes[path]

    def model(self, config: ModelEndpoint) -> ChatModel:
        """One loaded model per endpoint config; llama.cpp endpoints share weights per file."""
        key = _key(config)
        if key not in self._models:
            self._models[key] = self._build_model(config)
        return self._models[key]

    def _build_model(self, config: ModelEndpoint) -> ChatModel:
        from workbench.models.endpoints import provider_registry

        cls = provider_registry().resolve(config.provider)
        if config.provider == "llama_cpp":
            # One loaded GGUF (and its lock) per file for every endpoint of every variant.
            return cls(config, weights=self._llama_weights())  # type: ignore[no-any-return]
        return cls(config)  # type: ignore[no-any-return]

    def _llama_weights(self) -> Any:
        if self._weights is None:
            from workbench.models.llama_cpp import LlamaWeights

            self._weights = LlamaWeights()
        return self._weights

    def pool(self, config: PipelineConfig) -> EndpointPool:
        """The variant's endpoints, over shared models: its own breakers, retries and fallbacks."""
        from workbench.models.endpoints import EndpointPool

        models = resolve_model_paths(config, self.root).models
        key = _key(models)
        if key not in self._pools:
            shared = {
                name: self._model_overrides.get(name) or self.model(endpoint) for name, endpoint in models.items()
            }
            self._pools[key] = EndpointPool(models, overrides=shared)
        return self._pools[key]

    def pipeline(self, config: PipelineConfig, documents: Sequence[Document], *, cached: bool = True) -> Pipeline:
        """The variant's pipeline over the index of `documents`. `cached=False` skips the stage
        cache (repeats after the first must really run again)."""
        from workbench.pipeline import build_pipeline

        index = self.index(config, documents)
        key = (_key(config), index.fingerprint, cached)
        if key not in self._pipelines:
            cache = self.cache if cached else None
            self._pipelines[key] = build_pipeline(config, self.embedder(config), index, self.pool(config), cache)
        return self._pipelines[key]

    def warm_up(self, config: PipelineConfig, documents: Sequence[Document]) -> None:
        self.pipeline(config, documents).warm_up()

    def close(self) -> None:
        """Close models (on the loop their async clients belong to), the loop, the cache."""
        models = list(self._models.values())

        async def aclose() -> None:
            for model in models:
                aclose_model = getattr(model, "aclose", None)
                if callable(aclose_model):
                    await aclose_model()

        if models:
            self.loop.run(aclose())
        for model in models:
            close = getattr(model, "close", None)
            if callable(close):
                close()
        if self._weights is not None:
            self._weights.close()
        if self._own_loop:
            self.loop.close()
        close_cache = getattr(self.cache, "close", None)
        if close_cache is not None:
            close_cache()
        self._models.clear()
        self._pools.clear()
        self._pipelines.clear()
