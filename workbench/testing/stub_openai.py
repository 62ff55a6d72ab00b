"""A stub OpenAI-compatible model server, for load and fault tests that need a real HTTP model
with known behaviour: a fixed latency, a bounded number of requests in flight at once (as a
real inference server has), and a seeded share of failures.

    python -m workbench.testing.stub_openai --port P [--latency-s 0.05] [--capacity 8]
        [--fail-rate 0.5] [--seed 7]

`POST /v1/chat/completions` (streaming or not) answers with the first sentence-like piece of
the prompt's context, or "stub answer"; a failure is an HTTP 503. `GET /stats` counts calls,
failures and the most requests in flight. `stub_openai(...)` runs it in a subprocess.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from workbench.core.errors import ProviderUnavailable
from workbench.testing._process import free_port, log_tail

ANSWER = "The stub model answers this."


def build_app(*, latency_s: float, capacity: int, fail_rate: float, seed: int) -> Any:
    app = FastAPI()
    slots = asyncio.Semaphore(capacity)
    roll = random.Random(seed)
    stats = {"calls": 0, "failures": 0, "in_flight": 0, "max_in_flight": 0}

    def usage(messages: list[dict[str, Any]]) -> dict[str, int]:
        prompt = sum(len(str(m.get("content", "")).split()) for m in messages)
        answer = len(ANSWER.split())
        return {"prompt_tokens": prompt, "completion_tokens": answer, "total_tokens": prompt + answer}

    @contextlib.asynccontextmanager
    async def slot() -> AsyncIterator[None]:
        async with slots:
            stats["in_flight"] += 1
            stats["max_in_flight"] = max(stats["max_in_flight"], stats["in_flight"])
            try:
                await asyncio.sleep(latency_s)
                yield
            finally:
                stats["in_flight"] -= 1

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        body = await request.json()
        stats["calls"] += 1
        if roll.random() < fail_rate:
            stats["failures"] += 1
            return JSONResponse({"error": {"message": "injected failure", "type": "server_error"}}, status_code=503)
        model = body.get("model", "stub")
        used = usage(body.get("messages", []))
        if not body.get("stream"):
            async with slot():
                message = {"role": "assistant", "content": ANSWER}
                return {
                    "id": "stub",
                    "object": "chat.completion",
                    "model": model,
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    "usage": used,
                }

        async def events() -> AsyncIterator[str]:
            async with slot():
                for word in ANSWER.split(" "):
                    chunk = {"choices": [{"index": 0, "delta": {"content": word + " "}}], "model": model}
                    yield f"data: {json.dumps(chunk)}\n\n"
                yield f"data: {json.dumps({'choices': [], 'usage': used, 'model': model})}\n\n"
                yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": "stub", "object": "model"}]}

    @app.get("/stats")
    async def get_stats() -> dict[str, int]:
        return stats

    return app


class StubOpenAI:
    """The stub server in a subprocess on a free loopback port."""

    def __init__(self, *, latency_s: float = 0.05, capacity: int = 8, fail_rate: float = 0.0, seed: int = 7) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._dir = tempfile.TemporaryDirectory(prefix="stub-openai-")
        self.log_path = Path(self._dir.name) / "stub.log"
        args = ["--port", str(self.port), "--latency-s", str(latency_s), "--capacity", str(capacity)]
        args += ["--fail-rate", str(fail_rate), "--seed", str(seed)]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "workbench.testing.stub_openai", *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=os.environ | {"PYTHONUNBUFFERED": "1"},
            )
        self._wait()

    def _wait(self, timeout_s: float = 60.0) -> None:
        for _ in range(int(timeout_s / 0.1)):
            if self.proc.poll() is not None:
                raise ProviderUnavailable(f"the stub model server exited:\n{log_tail(self.log_path)}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/models", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise ProviderUnavailable(f"the stub model server did not start:\n{log_tail(self.log_path)}")

    def stats(self) -> dict[str, int]:
        data: dict[str, int] = httpx.get(f"http://127.0.0.1:{self.port}/stats", timeout=5).json()
        return data

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._dir.cleanup()


@contextlib.contextmanager
def stub_openai(**kwargs: Any) -> Iterator[StubOpenAI]:
    server = StubOpenAI(**kwargs)
    try:
        yield server
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-s", type=float, default=0.05)
    parser.add_argument("--capacity", type=int, default=8)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    app = build_app(latency_s=args.latency_s, capacity=args.capacity, fail_rate=args.fail_rate, seed=args.seed)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
