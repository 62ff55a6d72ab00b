"""Honest streaming: an answer's text reaches the client only once the output guards passed it.

`stream_answer` runs the pipeline with its generator streaming (`Pipeline.astream`) and yields:

- `Delta(text)`: committed text, safe to send. Text is held back and released up to a commit
  point: the end of a sentence (`core.text.split_sentences`) whose whole prefix the output
  guards passed, as they would pass a final answer (masked text is what is released). A JSON
  answer commits only at the end, after its schema check.
- then exactly one of:
  - `Finished(state)`: the final state, equal to a non-streamed `Pipeline.arun`'s; the Deltas
    joined equal `state.answer`.
  - `Failed(error, committed)`: an input guard block, a provider failure, an output block.
    `committed` says whether a Delta was already yielded: if not, answer with a clean HTTP
    error (the HTTP layer awaits the first event before sending headers); if so, end the stream
    with an explicit error event, never a normal end.

The output guards run in full on the final answer exactly as in the non-streamed pipeline. If
the final answer does not begin with the text already released (the full text read differently
from its prefix), the stream fails rather than send a different answer than the one checked.

A model failure before any commit falls back to the next endpoint (`EndpointPool.astream`);
the client sees only the text of the endpoint that answered. A failure after a commit is a
`Failed(committed=True)`, never a truncated answer marked complete.

An exception that is not a `WorkbenchError` is a bug: it propagates from the iterator.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass

from workbench.core.errors import GuardrailBlocked, WorkbenchError
from workbench.core.protocols import DraftCheck
from workbench.core.stage import Pipeline
from workbench.core.state import RequestState
from workbench.core.text import split_sentences

__all__ = ["Delta", "Failed", "Finished", "HeldBack", "StreamEvent", "stream_answer"]


@dataclass(frozen=True)
class Delta:
    """Committed text, safe to send."""

    text: str


@dataclass(frozen=True)
class Finished:
    """The final state (equal to a non-streamed `arun`'s). `model_ttft_s`: seconds from the start
    of the model call that answered to its first piece, the model's own time to first token
    (for a model that cannot stream, its whole latency); None when no model ran (a cache hit)."""

    state: RequestState
    model_ttft_s: float | None = None


@dataclass(frozen=True)
class Failed:
    """The request failed; `committed`: whether any `Delta` was already yielded."""

    error: WorkbenchError
    committed: bool


StreamEvent = Delta | Finished | Failed


def sentences_end(text: str) -> int:
    """Where the last complete sentence of `text` ends (0 if none is complete yet). A sentence is
    complete once the next one has begun, by the workbench's one splitter."""
    sentences = split_sentences(text)
    end = 0
    for sentence in sentences[:-1]:
        end = text.index(sentence, end) + len(sentence)
    return end


class HeldBack:
    """The `AnswerSink` behind `stream_answer`: buffers the model's pieces and calls `emit` with
    each commit (see the module docstring)."""

    def __init__(self, emit: Callable[[Delta], None]) -> None:
        self._emit = emit
        self._check: DraftCheck | None = None
        self._buffer = ""
        self._checked = 0  # length of the longest draft judged so far
        self._started = time.perf_counter()
        self.released = ""
        self.endpoint: str | None = None
        self.model_ttft_s: float | None = None

    @property
    def committed(self) -> bool:
        return bool(self.released)

    def begin(self, check: DraftCheck | None) -> None:
        self._check = check

    def restart(self, endpoint: str) -> None:
        if self.committed:  # the pool never restarts after a commit; a new caller might
            raise RuntimeError("cannot restart a stream that has committed text")
        self.endpoint = endpoint
        self._buffer, self._checked = "", 0
        self._started = time.perf_counter()
        self.model_ttft_s = None

    async def write(self, piece: str) -> None:
        if self.model_ttft_s is None:
            self.model_ttft_s = time.perf_counter() - self._started
        self._buffer += piece
        if self._check is None:
            return
        # The final answer is the stripped completion, so drafts are cut from the same text.
        text = self._buffer.lstrip()
        end = sentences_end(text)
        if end <= self._checked:
            return
        self._checked = end
        draft = await self._check(text[:end])
        answer = draft.answer
        # A blocked draft is held (later text may make the whole answer pass); so is one that
        # no longer extends what the client already has.
        if draft.blocked or answer is None or not answer.startswith(self.released):
            return
        if len(answer) > len(self.released):
            delta, self.released = answer[len(self.released) :], answer
            self._emit(Delta(delta))


def blocked_error(state: RequestState) -> WorkbenchError:
    """The typed error of a blocked state, as `Workbench.ask` raises it."""
    from workbench.guardrails import raise_if_blocked

    try:
        raise_if_blocked(state)
    except WorkbenchError as exc:
        return exc
    return GuardrailBlocked("the request was blocked")


async def stream_answer(
    pipeline: Pipeline, query: str, *, request_id: str | None = None
) -> AsyncGenerator[StreamEvent, None]:
    """Answer `query` with `pipeline`, streaming: `Delta`s, then one `Finished` or `Failed`.

    Stop iterating (or `aclose()` the iterator) to cancel: the model's generation stops."""
    state = RequestState(query=query) if request_id is None else RequestState(query=query, request_id=request_id)
    queue: asyncio.Queue[Delta | None] = asyncio.Queue()
    sink = HeldBack(queue.put_nowait)
    task = asyncio.create_task(pipeline.astream(state, sink))
    # Deltas are queued while the task runs, so the None marking its end comes after them all.
    task.add_done_callback(lambda _: queue.put_nowait(None))
    try:
        while (delta := await queue.get()) is not None:
            yield delta
        try:
            final = task.result()
        except WorkbenchError as exc:
            yield Failed(exc, committed=sink.committed)
            return
        for event in _ending(final, sink):
            yield event
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _ending(final: RequestState, sink: HeldBack) -> list[StreamEvent]:
    if final.blocked:
        return [Failed(blocked_error(final), committed=sink.committed)]
    answer = final.answer or ""
    if not answer.startswith(sink.released):
        error = GuardrailBlocked("the checked answer differs from the text already streamed; the stream was cut")
        return [Failed(error, committed=True)]
    rest = answer[len(sink.released) :]
    head: list[StreamEvent] = [Delta(rest)] if rest else []
    return [*head, Finished(final, model_ttft_s=sink.model_ttft_s)]
