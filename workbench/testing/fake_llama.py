"""A stand-in for `llama_cpp.Llama`, for tests of the code that drives one (timeouts,
cancellation, shared weights) without loading a GGUF."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any


class FakeLlama:
    """Generates `max_tokens` tokens, `token_s` apart, checking `should_stop` after each one
    as llama-cpp-python's stopping criteria are."""

    def __init__(self, token_s: float = 0.005) -> None:
        self.token_s = token_s
        self.running = 0
        self.most_running = 0
        self.tokens = 0
        self.closed = False
        self._lock = threading.Lock()

    def should_stop(self) -> bool:
        return False

    def create_chat_completion(self, stream: bool = False, **kwargs: Any) -> Any:
        if stream:
            return self._chunks(**kwargs)
        with self._lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            made = 0
            for _ in range(kwargs["max_tokens"]):
                time.sleep(self.token_s)
                made += 1
                self.tokens += 1
                if self.should_stop():
                    break
            return {
                "choices": [{"message": {"content": "tok " * made}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": made},
            }
        finally:
            with self._lock:
                self.running -= 1

    def _chunks(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        # Shaped like llama-cpp-python's chat chunks: a role, one chunk per token, a finish.
        yield {"choices": [{"delta": {"role": "assistant"}, "finish_reason": None}]}
        with self._lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            for _ in range(kwargs["max_tokens"]):
                time.sleep(self.token_s)
                self.tokens += 1
                yield {"choices": [{"delta": {"content": "tok "}, "finish_reason": None}]}
                if self.should_stop():
                    break
            yield {"choices": [{"delta": {}, "finish_reason": "length"}]}
        finally:
            with self._lock:
                self.running -= 1

    def close(self) -> None:
        self.closed = True
