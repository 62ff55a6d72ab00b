"""`SemanticRouter`: pick the route whose example utterances are nearest to the question."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from workbench.core.errors import RoutingError
from workbench.core.protocols import Embedder, embedder_identity
from workbench.core.schema import RoutingConfig
from workbench.core.stage import Stage
from workbench.core.state import RequestState


def validate_route(config: RoutingConfig, name: str) -> str:
    """Return `name` if it is a configured route, else raise `RoutingError` listing the valid ones."""
    if name not in config.routes:
        raise RoutingError(f"unknown route {name!r}; valid routes: {', '.join(sorted(config.routes))}")
    return name


def _normalise(vectors: Any) -> np.ndarray:
    arr = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    return arr / np.maximum(np.linalg.norm(arr, axis=1, keepdims=True), 1e-12)


class SemanticRouter(Stage):
    """Embeds each route's utterances once (on first use), then routes each question to the
    route with the highest max-cosine similarity, or to `config.default` below `config.threshold`.

    Routes without utterances are reachable only as the default. Writes `route` and
    `route_score` (the best similarity, or None when no route has utterances).
    """

    kind = "semantic_router"
    reads = ("query",)
    writes = ("route", "route_score")
    config: RoutingConfig

    def __init__(self, config: RoutingConfig, embedder: Embedder, name: str | None = None) -> None:
        super().__init__(config, name)
        self.embedder = embedder
        self._lock = threading.Lock()
        self._index: tuple[list[str], np.ndarray, np.ndarray] | None = None

    def config_fingerprint(self) -> Any:
        # The embedder decides the routes as much as the utterances do.
        embedder = embedder_identity(self.embedder)
        return {"routing": self.config.model_dump(mode="json"), "embedder": embedder}

    def _utterance_index(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(route names, owner index per utterance, normalised utterance vectors), built once."""
        with self._lock:
            if self._index is None:
                names = [n for n, r in self.config.routes.items() if r.utterances]
                texts = [u for n in names for u in self.config.routes[n].utterances]
                owners = np.array([i for i, n in enumerate(names) for _ in self.config.routes[n].utterances], dtype=int)
                vectors = _normalise(self.embedder.embed(texts)) if texts else np.zeros((0, 1), np.float32)
                self._index = (names, owners, vectors)
            return self._index

    def warm_up(self) -> None:
        self._utterance_index()

    def scores(self, question: str) -> dict[str, float]:
        """Max cosine similarity of `question` to each route that has utterances."""
        names, owners, vectors = self._utterance_index()
        if not names:
            return {}
        sims = vectors @ _normalise(self.embedder.embed([question]))[0]
        return {name: float(sims[owners == i].max()) for i, name in enumerate(names)}

    def route(self, question: str) -> tuple[str, float | None]:
        """(chosen route, best similarity); the default when the best is below the threshold."""
        scores = self.scores(question)
        if not scores:
            return self.config.default, None
        best = max(scores, key=scores.__getitem__)
        score = scores[best]
        return (best if score >= self.config.threshold else self.config.default), score

    def run(self, state: RequestState) -> RequestState:
        route, score = self.route(state.query)
        return state.model_copy(update={"route": route, "route_score": score})
