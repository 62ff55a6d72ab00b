"""Reading a model's stream into a `PieceSink`, for `EndpointPool.astream`."""

from __future__ import annotations

import contextlib

from workbench.core.errors import ProviderError
from workbench.core.protocols import ChatModel, Completion, GenerationRequest, PieceSink


class MidStream(Exception):  # noqa: N818 - a carrier, never seen outside the pool
    """Carries a provider error raised after text was committed to the client: neither retried
    nor handed to a fallback, so it is deliberately not a `ProviderError`."""

    def __init__(self, error: ProviderError) -> None:
        super().__init__(str(error))
        self.error = error


class SinkFailed(Exception):  # noqa: N818 - a carrier, never seen outside the pool
    """Carries an error raised by the sink (an output check on a draft), not by the model: it
    says nothing about the endpoint's health, so no breaker counts it and no fallback tries."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


async def _write(sink: PieceSink, piece: str) -> None:
    try:
        await sink.write(piece)
    except Exception as exc:
        raise SinkFailed(exc) from exc


async def drain(model: ChatModel, request: GenerationRequest, sink: PieceSink) -> Completion:
    """Send `model`'s pieces to `sink` and return its final `Completion`. A model without
    `astream` (a user's own, a fake) answers with `acomplete`, streamed as one piece."""
    stream = getattr(model, "astream", None)
    if stream is None:
        whole = await model.acomplete(request)
        if whole.text:
            await _write(sink, whole.text)
        return whole
    completion: Completion | None = None
    # aclosing: an attempt that fails or times out stops the model's generation at once.
    async with contextlib.aclosing(stream(request)) as pieces:
        async for item in pieces:
            if isinstance(item, Completion):
                completion = item
            elif item:
                await _write(sink, item)
    if completion is None:
        raise ProviderError(f"{type(model).__name__} ended its stream without a final completion")
    return completion
