"""Request complexity: a few cheap features of the request and a logistic score over them.

The features are known before any model runs: the question's length and how clearly retrieval
found one answer (the top chunk's score and its margin over the second). A fitted
`ComplexityConfig` turns them into a score in [0, 1]; at or above its threshold a route sends
the request to its strong model. `fit_complexity` fits the weights from labelled requests
(did the weak model fall short of the strong one?) with plain numpy, so no extra dependency.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from workbench.core.errors import ConfigError
from workbench.core.schema import ComplexityConfig
from workbench.core.state import Chunk

FEATURES: tuple[str, ...] = ("query_words", "top_score", "margin")


def request_features(query: str, chunks: Sequence[Chunk]) -> dict[str, float]:
    """The complexity features of one request; a route without retrieval has zero scores."""
    top = chunks[0].score if chunks else 0.0
    second = chunks[1].score if len(chunks) > 1 else 0.0
    return {"query_words": float(len(query.split())), "top_score": float(top), "margin": float(top - second)}


def complexity_score(config: ComplexityConfig, features: dict[str, float]) -> float:
    """sigmoid(bias + sum of weight * feature), in [0, 1]."""
    z = config.bias + sum(w * features[name] for name, w in config.weights.items())
    return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))


def fit_complexity(
    features: Sequence[dict[str, float]],
    needs_strong: Sequence[bool],
    *,
    l2: float = 1.0,
    steps: int = 3000,
    learning_rate: float = 0.1,
    threshold: float = 0.5,
) -> ComplexityConfig:
    """Logistic regression of `needs_strong` on the features, class-balanced and L2-regularised,
    fitted on standardised features and folded back to raw-feature weights."""
    if len(features) != len(needs_strong) or not features:
        raise ConfigError("fit_complexity needs one label per feature row, and at least one row")
    x = np.array([[row[name] for name in FEATURES] for row in features], dtype=float)
    y = np.array(needs_strong, dtype=float)
    if y.min() == y.max():
        raise ConfigError("fit_complexity needs both labels: some requests the weak model handles, some it does not")
    mean, std = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-9)
    z = (x - mean) / std
    # Balanced classes, so a rare "needs strong" label still moves the boundary.
    weight = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean()))
    w, b = np.zeros(z.shape[1]), 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(z @ w + b)))
        grad = weight * (p - y)
        w -= learning_rate * (z.T @ grad / len(y) + l2 * w / len(y))
        b -= learning_rate * float(grad.mean())
    raw = w / std
    return ComplexityConfig(
        weights={name: round(float(v), 6) for name, v in zip(FEATURES, raw, strict=True)},  # type: ignore[misc]
        bias=round(float(b - (raw * mean).sum()), 6),
        threshold=threshold,
    )
