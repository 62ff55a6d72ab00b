"""A sentence-transformers embedder on CPU, loaded lazily from local weights.

Implements `core.protocols.Embedder`: `embed(texts)` returns L2-normalised float32 vectors of
shape (n, dim). Single-text calls (queries) go through a small LRU cache, so a question asked
by several stages or sweep points is encoded once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from workbench.core.errors import ConfigError, MissingDependency
from workbench.core.implementation import package_versions
from workbench.core.offline import offline_environment, quiet_progress_bars
from workbench.core.resources import resolve_source, source_version
from workbench.core.schema import EmbedderConfig

log = logging.getLogger(__name__)

_BACKEND_PACKAGES: dict[str, tuple[str, ...]] = {"torch": (), "onnx": ("torch", "onnxruntime")}


class SentenceTransformerEmbedder:
    """`Embedder` backed by `sentence_transformers.SentenceTransformer`, device cpu; with
    `backend: onnx` its encoder runs on onnxruntime (`_onnx_encoder`).

    The constructor only keeps the config; the model loads on first use or in `warm_up()`.
    Calls are serialised by a lock: torch already uses every core for one batch, and the lock
    keeps lazy loading and the query cache consistent under concurrent callers.
    """

    def __init__(self, config: EmbedderConfig, query_cache_size: int = 1024) -> None:
        self.config = config
        self._model: Any = None
        self._onnx: Any = None
        self._dim: int | None = None
        self._lock = threading.RLock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = query_cache_size
        self.cache_hits = 0

    @property
    def fingerprint(self) -> str:
        """What decides the vectors: weights (and the version of the package shipping them),
        normalisation and the sentence-transformers/transformers versions; not the batch size."""
        # The torch backend is the one every existing cache key was made with: leave it out.
        exclude = {"batch_size"} if self.config.backend == "onnx" else {"batch_size", "backend"}
        data = {
            "config": self.config.model_dump(mode="json", exclude=exclude),
            "weights": source_version(self.config.source),
            "packages": package_versions(
                ("sentence-transformers", "transformers", *_BACKEND_PACKAGES[self.config.backend])
            ),
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def warm_up(self) -> None:
        self._load()

    def _load(self) -> Any:
        if self._model is not None:
            return self._model
        with self._lock:
            if self._model is None:
                path = resolve_source(self.config.source)
                offline_environment()
                try:
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:
                    raise MissingDependency("sentence-transformers", "local") from exc
                quiet_progress_bars()
                log.info("loading embedder from %s", path)
                model = SentenceTransformer(str(path), device="cpu")
                getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
                dim = getter()
                if dim is None:
                    raise ConfigError(f"embedder at {path} does not report its dimension")
                self._dim = int(dim)
                if self.config.backend == "onnx":
                    import torch

                    from workbench.models._onnx_encoder import OnnxEncoder

                    self._onnx = OnnxEncoder(model, self.fingerprint, threads=torch.get_num_threads())
                self._model = model
        return self._model

    @property
    def dim(self) -> int:
        self._load()
        assert self._dim is not None
        return self._dim

    def _encode(self, texts: list[str]) -> np.ndarray:
        model = self._load()
        with self._lock:
            if self._onnx is not None:
                return self._onnx.encode(texts, self.config.batch_size, self.config.normalize)  # type: ignore[no-any-return]
            vectors = model.encode(
                texts,
                batch_size=self.config.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=self.config.normalize,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed(self, texts: list[str]) -> np.ndarray:
        """Vectors for `texts`, shape (len(texts), dim), float32."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if len(texts) > 1 or self._cache_size == 0:
            return self._encode(list(texts))
        return self._cached(texts[0])[None, :]

    def _cached(self, text: str) -> np.ndarray:
        with self._lock:
            hit = self._cache.get(text)
            if hit is not None:
                self._cache.move_to_end(text)
                self.cache_hits += 1
                return hit
        vector = self._encode([text])[0]
        vector.setflags(write=False)  # shared between callers: nobody may change it
        with self._lock:
            self._cache[text] = vector
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return vector
