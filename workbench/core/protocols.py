"""Interfaces shared across layers. Layers receive these injected; none imports another layer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, Field

from workbench.core.state import Chunk, Frozen, RequestState


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


@runtime_checkable
class StreamingChatModel(ChatModel, Protocol):
    """A `ChatModel` that can also stream: `astream` yields the answer's text pieces as the model
    makes them, then exactly one `Completion` (usage, and the text that `acomplete` would return:
    the pieces joined and stripped). A model without `astream` streams as one piece."""

    def astream(self, request: GenerationRequest) -> AsyncIterator[str | Completion]: ...


@runtime_checkable
class TokenCounter(Protocol):
    """A model that can count tokens with its own tokenizer. `count_tokens` returns None when it
    cannot right now without blocking (the weights are not loaded yet): callers estimate."""

    def count_tokens(self, text: str) -> int | None: ...


class PieceSink(Protocol):
    """Where `EndpointPool.astream` sends a model's pieces.

    `committed` says whether any text has reached the client: until then a failed attempt is
    discarded (`restart` is called before every attempt, on whichever endpoint), after it a
    failure ends the stream, since text the client has cannot be taken back.
    """

    @property
    def committed(self) -> bool: ...

    def restart(self, endpoint: str) -> None: ...

    async def write(self, piece: str) -> None: ...


# A draft answer (the text generated so far, cut at a sentence end) in, the state the stages
# after the generator (output guards) make of it out: blocked, masked or passed as is.
DraftCheck = Callable[[str], Awaitable[RequestState]]


class AnswerSink(PieceSink, Protocol):
    """A `PieceSink` fed by a streaming generator stage, which first calls `begin` with the way
    to check a draft; `None` means only the whole answer can be checked (a JSON answer)."""

    def begin(self, check: DraftCheck | None) -> None: ...
