"""The gateway's own overhead, and the proof under load of issue 9 §4, on loopback.

Part 1 (overhead): one bundle whose model is the stub OpenAI-compatible server with no latency
and room for 1,000 requests at once, served by real `python -m workbench serve` twice:
  - `plain`: no auth, no limits (loopback only);
  - `gateway`: `--keys` (one API key), `--limits` (a team limit high enough never to refuse)
    and `--redis` on a real redis-server on loopback: every request checks its key, reserves
    in Redis before the model call and settles after it.
Each is timed one client at a time (p50/p99) and with `--concurrency` clients (requests/s),
the clients in their own process so they do not share the server's GIL. The two servers run
side by side and are measured in alternating blocks (`--rounds`), so the machine's background
noise falls on both alike. The gateway's overhead is `gateway` minus `plain`.

Part 2 (limiter): `Limiter.reserve` + `settle` against the same redis-server, in process, and a
bare Redis PING for the floor of one loopback round trip.

Part 3 (load): the scenario of `tests/serve/test_gateway_load.py` with its figures: teams A
and B (100 clients each, 6 requests/s each) alone and with team C abusive (100 clients, 25
requests/s, ignoring Retry-After), interleaved in one run; then the same abuse from team D,
which has no limits (the control). The model: 2 s latency, 56 requests in flight at most.

    .venv/bin/python benchmarks/bench_gateway.py [--requests 400] [--concurrency 16] [--rounds 2]
        [--load-seconds 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from _figures import nearest_rank  # noqa: E402

QUESTIONS = [
    "Who picked up the remaining four packages?",
    "When did the monopoly end?",
    "How many packages were there?",
    "Who was responsible for this?",
]


def _ms(values: list[float], q: float) -> float:
    return round(nearest_rank(values, q) * 1000, 2)


def _client(base: str, key: str | None, n: int, concurrency: int, out: Any) -> None:
    """Runs in its own process, so the client does not share the server's GIL."""
    import httpx

    async def main() -> tuple[list[float], float]:
        latencies: list[float] = []
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=base, timeout=60, headers=headers, limits=limits) as client:
            for question in QUESTIONS:  # open the connections and warm the server's caches
                (await client.post("/v1/ask", json={"question": question})).raise_for_status()
            queue = list(range(n))

            async def worker() -> None:
                while queue:
                    i = queue.pop()
                    started = time.perf_counter()
                    response = await client.post("/v1/ask", json={"question": QUESTIONS[i % len(QUESTIONS)]})
                    response.raise_for_status()
                    latencies.append(time.perf_counter() - started)

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return latencies, time.perf_counter() - started

    out.put(asyncio.run(main()))


def _drive(base: str, key: str | None, n: int, concurrency: int) -> tuple[list[float], float]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_client, args=(base, key, n, concurrency, queue))
    proc.start()
    result: tuple[list[float], float] = queue.get()
    proc.join()
    return result


def overhead(n: int, concurrency: int, rounds: int, root: Path) -> dict[str, Any]:
    from tests.serve.test_gateway_load import create_keys
    from workbench.testing.gateway_bundle import make_gateway_bundle
    from workbench.testing.redis_server import redis_server
    from workbench.testing.stub_openai import stub_openai
    from workbench.testing.workbench_server import WorkbenchServer

    limits = root / "limits.yaml"
    limits.write_text(yaml.safe_dump({"teams": {"bench": {"rpm": 10**8, "tpm": 10**12}}}))
    keys_file = root / "keys.yaml"
    key = create_keys(keys_file, ("bench",))["bench"]
    one: dict[str, list[float]] = {"plain": [], "gateway": []}
    many: dict[str, list[float]] = {"plain": [], "gateway": []}
    seconds: dict[str, float] = {"plain": 0.0, "gateway": 0.0}
    with stub_openai(latency_s=0.0, capacity=1000) as stub, redis_server() as redis:
        bundle = make_gateway_bundle(root / "overhead", stub.url)
        quiet = ("--log-level", "warning")
        servers = {
            "plain": WorkbenchServer(bundle, *quiet, cwd=REPO),
            "gateway": WorkbenchServer(
                bundle, "--keys", str(keys_file), "--limits", str(limits), "--redis", redis.url, *quiet, cwd=REPO
            ),
        }
        try:
            for server in servers.values():
                server.wait_ready()
            for _ in range(rounds):
                for name, server in servers.items():
                    auth = key if name == "gateway" else None
                    latencies, _ = _drive(server.url, auth, n // rounds, 1)
                    one[name] += latencies
                    latencies, took = _drive(server.url, auth, n // rounds, concurrency)
                    many[name] += latencies
                    seconds[name] += took
        finally:
            for server in servers.values():
                server.stop()
        limiter = asyncio.run(_limiter(redis.url, n))
    figures: dict[str, Any] = {}
    for name in one:
        figures[name] = {
            "p50_ms": _ms(one[name], 0.5),
            "p99_ms": _ms(one[name], 0.99),
            "rps_c1": round(len(one[name]) / sum(one[name]), 1),
            f"rps_c{concurrency}": round(len(many[name]) / seconds[name], 1),
            f"p50_ms_c{concurrency}": _ms(many[name], 0.5),
            f"p99_ms_c{concurrency}": _ms(many[name], 0.99),
        }
    figures["gateway_overhead"] = {
        k: round(figures["gateway"][k] - figures["plain"][k], 2) for k in ("p50_ms", "p99_ms")
    } | {
        f"rps_c{concurrency}_ratio": round(
            figures["gateway"][f"rps_c{concurrency}"] / figures["plain"][f"rps_c{concurrency}"], 3
        )
    }
    figures["limiter"] = limiter
    return figures


async def _limiter(url: str, n: int) -> dict[str, float]:
    from redis.asyncio import Redis

    from workbench.serve.limits import Limiter, LimitsConfig, RedisStore, TeamLimits
    from workbench.serve.principal import Principal

    # What the served requests above did: a key's team with a request and a token limit.
    config = LimitsConfig(teams={"bench": TeamLimits(rpm=10**8, tpm=10**12)})
    limiter = Limiter(config, RedisStore(url))
    principal = Principal(key_id="bench-key", team="bench")
    both, reserve = [], []
    for i in range(n):
        started = time.perf_counter()
        reservation = await limiter.reserve(principal, limiter.estimate(QUESTIONS[i % len(QUESTIONS)]))
        reserved = time.perf_counter()
        await limiter.settle(reservation, 300)
        both.append(time.perf_counter() - started)
        reserve.append(reserved - started)
    await limiter.aclose()
    ping = []
    async with Redis.from_url(url) as client:
        for _ in range(n):
            started = time.perf_counter()
            await client.ping()
            ping.append(time.perf_counter() - started)
    return {
        "reserve_plus_settle_p50_ms": _ms(both, 0.5),
        "reserve_plus_settle_p99_ms": _ms(both, 0.99),
        "reserve_p50_ms": _ms(reserve, 0.5),
        "redis_ping_p50_ms": _ms(ping, 0.5),
        "redis_ping_p99_ms": _ms(ping, 0.99),
    }


def load(seconds: float, root: Path) -> dict[str, Any]:
    import tests.serve.test_gateway_load as scenario
    from workbench.testing.gateway_bundle import make_gateway_bundle
    from workbench.testing.redis_server import redis_server
    from workbench.testing.stub_openai import stub_openai
    from workbench.testing.workbench_server import WorkbenchServer

    limits = root / "load-limits.yaml"
    limits.write_text(yaml.safe_dump(scenario.LIMITS))
    keys_file = root / "load-keys.yaml"
    keys = scenario.create_keys(keys_file, ("A", "B", "C", "D"))
    stub_args = {"latency_s": scenario.STUB_LATENCY_S, "capacity": scenario.STUB_CAPACITY}
    with stub_openai(**stub_args) as stub, redis_server() as redis:
        bundle = make_gateway_bundle(root / "load", stub.url)
        args = ("--keys", str(keys_file), "--limits", str(limits), "--redis", redis.url, "--log-level", "warning")
        server = WorkbenchServer(bundle, *args, cwd=REPO)
        try:
            server.wait_ready()
            run = scenario.measure("C", server.url, keys, seconds=seconds, abuser="C", window_s=scenario.WINDOW_S)
            in_flight_limited = stub.stats()["max_in_flight"]
            control = scenario.measure("D", server.url, keys, seconds=seconds / 2, abuser="D")
            in_flight_control = stub.stats()["max_in_flight"]
        finally:
            server.stop()

    def row(values: list[float]) -> dict[str, float]:
        return {"n": len(values), "p50_ms": _ms(values, 0.5), "p99_ms": _ms(values, 0.99)}

    alone = run.latencies("A", "B", abused=False)
    return {
        "A+B alone": row(alone),
        "A+B, C abusive (limited)": row(run.latencies("A", "B", abused=True)),
        "A+B, D abusive (no limits)": row(control.latencies("A", "B")),
        "p99 ratio, C abusive / alone": round(
            nearest_rank(run.latencies("A", "B", abused=True), 0.99) / nearest_rank(alone, 0.99), 3
        ),
        "p99 ratio, D abusive / alone": round(
            nearest_rank(control.latencies("A", "B"), 0.99) / nearest_rank(alone, 0.99), 3
        ),
        "C admitted": run.count("C", 200),
        "C refused (429)": run.count("C", 429),
        "C bound (rpm burst + refill)": round(scenario.ABUSER_RPM * (1 + run.elapsed_s / 60), 1),
        "D admitted": control.count("D", 200),
        "responses / sent": f"{len(run.results) + len(control.results)} / {run.sent + control.sent}",
        "statuses": sorted({r.status for r in run.results + control.results}),
        "model in flight, most (limited run, then control)": [in_flight_limited, in_flight_control],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400, help="per server and mode, across the rounds")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--load-seconds", type=float, default=40, help="part 3 (0: skip)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} {platform.machine()} {os.cpu_count()} cores,"
        f" Python {platform.python_version()}, load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
        figures = overhead(args.requests, args.concurrency, args.rounds, Path(tmp))
        print(json.dumps({"overhead": figures}, indent=2), flush=True)
        under_load = load(args.load_seconds, Path(tmp)) if args.load_seconds else None
        if under_load:
            print(json.dumps({"load": under_load}, indent=2))
    print(f"# load at the end {os.getloadavg()[0]:.1f}\n")
    print(_table(figures, args.concurrency, under_load))


def _table(figures: dict[str, Any], concurrency: int, under_load: dict[str, Any] | None) -> str:
    c = concurrency
    lines = [
        f"| server | p50, 1 client | p99, 1 client | req/s, {c} clients | p99, {c} clients |",
        "|---|---|---|---|---|",
    ]
    for name in ("plain", "gateway"):
        f = figures[name]
        lines.append(f"| {name} | {f['p50_ms']} ms | {f['p99_ms']} ms | {f[f'rps_c{c}']} | {f[f'p99_ms_c{c}']} ms |")
    o, lim = figures["gateway_overhead"], figures["limiter"]
    lines.append(f"| gateway − plain | {o['p50_ms']:+} ms | {o['p99_ms']:+} ms | ×{o[f'rps_c{c}_ratio']} | |")
    lines.append(
        f"| `Limiter.reserve`+`settle`, Redis | {lim['reserve_plus_settle_p50_ms']} ms"
        f" | {lim['reserve_plus_settle_p99_ms']} ms | | |"
    )
    lines.append(f"| Redis PING | {lim['redis_ping_p50_ms']} ms | {lim['redis_ping_p99_ms']} ms | | |")
    lines.append("| LiteLLM, 4 instances (published) | 2 ms | 13 ms | 1,170 | |")
    if under_load:
        lines += ["", "| A and B | requests | p50 | p99 |", "|---|---|---|---|"]
        for label in ("A+B alone", "A+B, C abusive (limited)", "A+B, D abusive (no limits)"):
            row = under_load[label]
            lines.append(f"| {label} | {row['n']} | {row['p50_ms']} ms | {row['p99_ms']} ms |")
        lines.append(
            f"\nC admitted {under_load['C admitted']} (bound {under_load['C bound (rpm burst + refill)']}),"
            f" refused {under_load['C refused (429)']}; responses/sent {under_load['responses / sent']}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
