"""Interfaces shared across layers. Layers receive these injected; none imports another layer."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, Field

from workbench.core.state import Chunk, Frozen


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of shape (n, dim)."""

    @property
    def dim(self) -> int: ...

    def embed(self, texts: list[str]) -> np.ndarray: ...


def embedder_identity(embedder: Embedder) -> str:
    """What decides an embedder's vectors, for cache keys: its `fingerprint` if it has one,
    else its class and config."""
    ident = getattr(embedder, "fingerprint", None)
    if ident:
        return str(ident)
    config = getattr(embedder, "config", None)
    dumped = config.model_dump(mode="json") if isinstance(config, BaseModel) else None
    return f"{type(embedder).__module__}.{type(embedder).__qualname__}:{dumped}"


class GenerationRequest(Frozen):
    """What a chat model is asked: rendered messages, plus the raw question and chunks for
    models that work on them directly (the extractive baseline)."""

    question: str
    chunks: tuple[Chunk, ...] = ()
    messages: tuple[dict[str, str], ...] = ()
    params: dict[str, Any] = Field(default_factory=dict)
    json_schema: dict[str, Any] | None = None


class Completion(Frozen):
    text: str
    tokens_in: int
    tokens_out: int
    model: str
    abstained: bool = False


@runtime_checkable
class ChatModel(Protocol):
    """One provider's way of answering a `GenerationRequest`."""

    def complete(self, request: GenerationRequest) -> Completion: ...

    async def acomplete(self, request: GenerationRequest) -> Completion: ...
