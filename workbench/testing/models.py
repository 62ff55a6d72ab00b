"""Fake chat models for tests and fault injection. Each implements `ChatModel` and records the
requests it saw in `.requests`. Each streams too (`astream`), word by word;
`StreamingScriptedModel` can fail partway through a stream."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence

from workbench.core.errors import ProviderError, ProviderUnavailable
from workbench.core.protocols import Completion, GenerationRequest
from workbench.core.tokens import estimate_tokens

Reply = str | Completion | BaseException


def _completion(reply: str | Completion, request: GenerationRequest, model: str) -> Completion:
    if isinstance(reply, Completion):
        return reply
    prompt = " ".join(m.get("content", "") for m in request.messages) or request.question
    return Completion(text=reply, tokens_in=estimate_tokens(prompt), tokens_out=estimate_tokens(reply), model=model)


def word_pieces(text: str) -> list[str]:
    """`text` cut before each word, whitespace kept: the pieces join back to `text`."""
    return re.findall(r"\s*\S+\s*?(?=\s|$)|\s+$", text) if text else []


class _Recording:
    model = "fake"

    def __init__(self) -> None:
        self.requests: list[GenerationRequest] = []
        self._lock = threading.Lock()

    @property
    def calls(self) -> int:
        return len(self.requests)

    def _seen(self, request: GenerationRequest) -> int:
        with self._lock:
            self.requests.append(request)
            return len(self.requests)

    def complete(self, request: GenerationRequest) -> Completion:
        raise NotImplementedError

    async def acomplete(self, request: GenerationRequest) -> Completion:
        return self.complete(request)

    async def astream(self, request: GenerationRequest) -> AsyncIterator[str | Completion]:
        """The answer `acomplete` gives, word by word, then the `Completion`."""
        completion = await self.acomplete(request)
        for piece in word_pieces(completion.text):
            yield piece
        yield completion


class ScriptedModel(_Recording):
    """Plays `replies` in order; an exception in the list is raised at its turn. Raises
    `AssertionError` once the script runs out, or repeats the last reply if `repeat_last`."""

    model = "scripted"

    def __init__(self, replies: Sequence[Reply], repeat_last: bool = False) -> None:
        super().__init__()
        self.replies = list(replies)
        self.repeat_last = repeat_last

    def complete(self, request: GenerationRequest) -> Completion:
        n = self._seen(request)
        if n > len(self.replies):
            if not (self.repeat_last and self.replies):
                raise AssertionError(f"ScriptedModel ran out of replies after {len(self.replies)}")
            n = len(self.replies)
        reply = self.replies[n - 1]
        if isinstance(reply, BaseException):
            raise reply
        return _completion(reply, request, self.model)


class FunctionModel(_Recording):
    """Answers with `fn(request)`, which returns a string or a `Completion`."""

    model = "function"

    def __init__(self, fn: Callable[[GenerationRequest], str | Completion]) -> None:
        super().__init__()
        self.fn = fn

    def complete(self, request: GenerationRequest) -> Completion:
        self._seen(request)
        return _completion(self.fn(request), request, self.model)


class FailingModel(_Recording):
    """Raises `error` (an instance, or a class built with a message) on the first `fail_times`
    calls, or on every call when `fail_times` is None; answers `reply` afterwards."""

    model = "failing"

    def __init__(
        self,
        error: ProviderError | type[ProviderError] = ProviderError,
        fail_times: int | None = None,
        reply: str = "ok",
    ) -> None:
        super().__init__()
        self.error = error
        self.fail_times = fail_times
        self.reply = reply

    def complete(self, request: GenerationRequest) -> Completion:
        n = self._seen(request)
        if self.fail_times is None or n <= self.fail_times:
            raise self.error(f"injected failure {n}") if isinstance(self.error, type) else self.error
        return _completion(self.reply, request, self.model)


class SlowModel(_Recording):
    """Answers `reply` after `delay_s`: awaited in `acomplete`, blocking only in `complete`."""

    model = "slow"

    def __init__(self, delay_s: float, reply: str = "ok") -> None:
        super().__init__()
        self.delay_s = delay_s
        self.reply = reply

    def complete(self, request: GenerationRequest) -> Completion:
        self._seen(request)
        time.sleep(self.delay_s)
        return _completion(self.reply, request, self.model)

    async def acomplete(self, request: GenerationRequest) -> Completion:
        self._seen(request)
        await asyncio.sleep(self.delay_s)
        return _completion(self.reply, request, self.model)


class StreamingScriptedModel(ScriptedModel):
    """A `ScriptedModel` whose streams can fail: with `fail_after=k`, every stream raises `error`
    after its first k word pieces (k=0: before any). `piece_delay_s` is awaited before each
    piece, to measure time to first piece or to cancel a stream partway."""

    model = "streaming-scripted"

    def __init__(
        self,
        replies: Sequence[Reply],
        repeat_last: bool = False,
        *,
        fail_after: int | None = None,
        error: ProviderError | type[ProviderError] = ProviderUnavailable,
        piece_delay_s: float = 0.0,
    ) -> None:
        super().__init__(replies, repeat_last)
        self.fail_after = fail_after
        self.error = error
        self.piece_delay_s = piece_delay_s
        self.pieces_sent = 0

    async def astream(self, request: GenerationRequest) -> AsyncIterator[str | Completion]:
        completion = self.complete(request)
        for i, piece in enumerate(word_pieces(completion.text)):
            if self.fail_after is not None and i >= self.fail_after:
                break
            if self.piece_delay_s:
                await asyncio.sleep(self.piece_delay_s)
            self.pieces_sent += 1
            yield piece
        if self.fail_after is not None:
            error = self.error
            raise error(f"injected failure after {self.fail_after} piece(s)") if isinstance(error, type) else error
        yield completion
