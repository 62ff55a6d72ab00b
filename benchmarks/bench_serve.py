"""The server's own overhead, and time to first token, on loopback.

Part 1 (stub model): the quickstart pipeline (real embedder, guards, router, hybrid retrieval,
re-ranker) with its LLM replaced by an instant stub, timed three ways in one run:
  - `pipeline`: `Pipeline.arun` in process, the work every request does anyway;
  - `/v1/ask` and `/v1/chat/completions` through a real uvicorn server on 127.0.0.1, one client
    at a time (latency), then `--concurrency` clients (requests/s).
The server's own overhead (HTTP, validation, serialisation, request log, metrics) is the served
latency minus the in-process one.

Part 2 (`--ttft`, real SmolLM2): streamed chat completions; the time to the first content byte
at the client against the model's own time to its first piece (`Finished.model_ttft_s`, read
from the server's /metrics).

    .venv/bin/python benchmarks/bench_serve.py [--requests 300] [--concurrency 8] [--ttft 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from _figures import nearest_rank  # noqa: E402

from workbench.testing._process import free_port  # noqa: E402

QUESTIONS = [
    "Who picked up the remaining four Premier League packages?",
    "When did Setanta Sports win Premier League rights?",
    "What is a non-deterministic Turing machine?",
    "How many packages were available to broadcasters?",
]


def _start(app: Any) -> tuple[Any, str]:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


def _client(base: str, path: str, n: int, concurrency: int, out: Any) -> None:
    """Runs in its own process, so the client does not share the server's GIL."""
    import httpx

    async def main() -> tuple[list[float], float]:
        latencies: list[float] = []
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            queue = list(range(n))

            async def worker() -> None:
                while queue:
                    i = queue.pop()
                    question = QUESTIONS[i % len(QUESTIONS)]
                    body: dict[str, Any] = {"question": question}
                    if path.endswith("completions"):
                        body = {"model": "quickstart", "messages": [{"role": "user", "content": question}]}
                    started = time.perf_counter()
                    response = await client.post(path, json=body)
                    response.raise_for_status()
                    latencies.append(time.perf_counter() - started)

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return latencies, time.perf_counter() - started

    latencies, seconds = asyncio.run(main())
    out.put((latencies, seconds))


def _drive(base: str, path: str, n: int, concurrency: int) -> tuple[list[float], float]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_client, args=(base, path, n, concurrency, queue))
    proc.start()
    result: tuple[list[float], float] = queue.get()
    proc.join()
    return result


def _session(stub: bool) -> Any:
    from workbench.session import Workbench
    from workbench.testing.models import ScriptedModel

    stub_model = ScriptedModel(["The remaining four packages went to Sky."], repeat_last=True)
    models = {"smollm2": stub_model} if stub else None
    wb = Workbench.from_yaml(REPO / "experiments/quickstart.yaml", root=REPO, cache=None, models=models)
    wb.warm_up()
    return wb


def overhead(n: int, concurrency: int, *, request_log: bool = True) -> dict[str, Any]:
    from workbench.core.state import RequestState
    from workbench.serve.app import create_app
    from workbench.serve.service import ServedPipeline

    wb = _session(stub=True)
    pipeline = wb.pipeline
    in_process = []
    for i in range(n):
        started = time.perf_counter()
        wb.loop.run(pipeline.arun(RequestState(query=QUESTIONS[i % len(QUESTIONS)])))
        in_process.append(time.perf_counter() - started)
    with tempfile.TemporaryDirectory() as tmp:
        served = ServedPipeline.from_workbench(wb, log_dir=Path(tmp) / "requests")
        if not request_log:  # to attribute the overhead: the same server writing no log
            served.request_log.record = lambda *_: None  # type: ignore[method-assign]
        server, base = _start(create_app(served))
        figures: dict[str, Any] = {"pipeline": _summary(in_process, sum(in_process))}
        for path in ("/v1/ask", "/v1/chat/completions"):
            one, one_s = _drive(base, path, n, 1)
            many, many_s = _drive(base, path, n, concurrency)
            figures[path] = _summary(one, one_s) | {
                f"rps_c{concurrency}": round(n / many_s, 1),
                f"p99_ms_c{concurrency}": round(nearest_rank(many, 0.99) * 1000, 2),
            }
            figures[path]["overhead_p50_ms"] = round(figures[path]["p50_ms"] - figures["pipeline"]["p50_ms"], 2)
        server.should_exit = True
        served.close()
    wb.close()
    return figures


def _summary(latencies: list[float], seconds: float) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(nearest_rank(latencies, 0.99) * 1000, 2),
        "rps_c1": round(len(latencies) / seconds, 1),
    }


def ttft(n: int) -> dict[str, Any]:
    import httpx

    from workbench.serve.app import create_app
    from workbench.serve.service import ServedPipeline

    wb = _session(stub=False)
    with tempfile.TemporaryDirectory() as tmp:
        served = ServedPipeline.from_workbench(wb, log_dir=Path(tmp) / "requests")
        server, base = _start(create_app(served))
        client_ttft, totals = [], []
        for i in range(n):
            body = {
                "model": "quickstart",
                "stream": True,
                "messages": [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}],
            }
            started = time.perf_counter()
            first = None
            with httpx.stream("POST", f"{base}/v1/chat/completions", json=body, timeout=120) as response:
                for line in response.iter_lines():
                    if first is None and line.startswith("data: {") and '"content":"' in line.replace(" ", ""):
                        first = time.perf_counter() - started
            totals.append(time.perf_counter() - started)
            client_ttft.append(first if first is not None else totals[-1])
        metrics = httpx.get(f"{base}/metrics").text
        server.should_exit = True
        served.close()
    wb.close()
    model = _histogram_mean(metrics, "workbench_model_time_to_first_token_seconds")
    served_ttft = _histogram_mean(metrics, "workbench_time_to_first_token_seconds")
    return {
        "client_ttft_p50_s": round(statistics.median(client_ttft), 3),
        "server_ttft_mean_s": served_ttft,
        "model_ttft_mean_s": model,
        "total_p50_s": round(statistics.median(totals), 3),
    }


def _histogram_mean(text: str, name: str) -> float | None:
    values = {}
    for line in text.splitlines():
        for part in ("_sum", "_count"):
            if line.startswith(name + part + " ") or line.startswith(name + part + "{"):
                values[part] = float(line.rsplit(" ", 1)[1])
    if not values.get("_count"):
        return None
    return round(values["_sum"] / values["_count"], 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--ttft", type=int, default=10, help="streamed questions for part 2 (0: skip)")
    parser.add_argument("--no-request-log", action="store_true", help="serve without writing the request log")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(f"# {time.strftime('%Y-%m-%d')} {platform.machine()} {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    figures = overhead(args.requests, args.concurrency, request_log=not args.no_request_log)
    print(json.dumps({"overhead": figures}, indent=2))
    if args.ttft:
        print(json.dumps({"ttft": ttft(args.ttft)}, indent=2))


if __name__ == "__main__":
    main()
