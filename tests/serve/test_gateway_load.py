"""Issue 9 §4, proof under load: 300 concurrent clients of 3 teams on one real `serve` (keys,
team limits in a real Redis), the model a stub with a fixed latency and a finite number of
requests in flight, like a real inference server. Team C is abusive: 50 times its limit, it
ignores Retry-After. C is throttled, no request is lost, and A's and B's p99 stays within 10%
of their p99 alone. A control proves the test can fail: the same abuse from a team without
limits (D) queues at the model and A's and B's p99 gets clearly worse.

The ratio is of latencies, which the guide says never to gate on; it is made robust by design:
the model's 2 s (a short real answer) dominates a request, the offered load stays well below
what the 2 shared cores serve, the clients run in their own fresh process, and the unloaded
and loaded windows interleave in one run with the same seeded A and B schedule, so the
machine's other work falls on both alike. On a busy machine (load 3-6 on 2 cores) stalls of
100-300 ms hit a few requests at once now and then; the ratio ranged 0.83-1.19 over runs
with a 0.5 s model, 0.98-1.11 with 1 s.
`benchmarks/bench_gateway.py` prints the figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import multiprocessing as mp
import random
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import yaml

from tests.conftest import REPO

if TYPE_CHECKING:
    from workbench.testing.stub_openai import StubOpenAI

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]

QUESTIONS = [
    "Who picked up the remaining four packages?",
    "When did the monopoly end?",
    "How many packages were there?",
    "Who was responsible for this?",
]
STUB_LATENCY_S = 2.0  # a short real answer
STUB_CAPACITY = 56  # 28 requests/s at most: A and B use 43% of it, A, B and the abuser 132%
CLIENTS = 100  # per team
POLITE_PERIOD_S = 16.0  # each A or B client: one request every ~16 s, 6 requests/s per team
ABUSIVE_PERIOD_S = 4.0  # each abusive client: one every ~4 s, whatever it was told: 25 requests/s
ABUSER_RPM = 30
WINDOW_S = 5.0  # a request sent in a window spends 80% of its time in it, on average
LIMITS = {
    "teams": {
        "A": {"rpm": 1200, "tpm": 3_000_000},
        "B": {"rpm": 1200, "tpm": 3_000_000},
        "C": {"rpm": ABUSER_RPM, "tpm": 600_000},
    },
    # team D is not listed: it has no limits, the control
}


@dataclass
class Result:
    team: str
    sent_at: float  # seconds since A and B started
    status: int  # 0: no response (a timeout or a transport error)
    latency_s: float
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Phase:
    """What one load run got back. `abused(t)`: whether the abuser was sending at time t."""

    name: str
    results: list[Result]
    elapsed_s: float
    window_s: float | None = None
    sent: int = 0

    def abused(self, t: float) -> bool:
        return self.window_s is None or t < 0 or int(t // self.window_s) % 2 == 1

    def of(self, *teams: str, abused: bool | None = None) -> list[Result]:
        return [r for r in self.results if r.team in teams and (abused is None or self.abused(r.sent_at) == abused)]

    def latencies(self, *teams: str, abused: bool | None = None) -> list[float]:
        return [r.latency_s for r in self.of(*teams, abused=abused) if r.status == 200]

    def count(self, team: str, status: int) -> int:
        return sum(1 for r in self.of(team) if r.status == status)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def schedule(start: float, end: float, period_s: float, clients: int, seed: int) -> list[list[float]]:
    """Each client's send times in [start, end): a seeded first one within the first period,
    then one every period with a little jitter, so a team's requests arrive spread out, as
    independent users' do."""
    roll = random.Random(seed)
    plans = []
    for _ in range(clients):
        t = start + roll.uniform(0, period_s)
        times = []
        while t < end:
            times.append(t)
            t += period_s * roll.uniform(0.9, 1.1)
        plans.append(times)
    return plans


async def _client(
    http: httpx.AsyncClient, url: str, team: str, key: str, times: list[float], start: float, out: list[Result]
) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    for n, at in enumerate(times):
        await asyncio.sleep(max(0.0, start + at - time.monotonic()))
        sent = time.monotonic()
        body = {"question": QUESTIONS[n % len(QUESTIONS)]}
        try:
            r = await http.post(f"{url}/v1/ask", json=body, headers=headers)
            status, kept = r.status_code, {k: v for k, v in r.headers.items() if k.startswith(("x-ratelimit", "retry"))}
        except httpx.HTTPError:
            status, kept = 0, {}
        out.append(Result(team, sent - start, status, time.monotonic() - sent, kept))


async def run_load(
    name: str,
    url: str,
    keys: dict[str, str],
    *,
    seconds: float,
    abuser: str | None = None,
    window_s: float | None = None,
    head_start_s: float = 3.0,
    seed: int = 9,
) -> Phase:
    """A and B send a seeded schedule for `seconds`, one request per client every
    POLITE_PERIOD_S. `abuser` (a team) starts `head_start_s` earlier, so its burst allowance is
    spent before A and B arrive, then sends throughout, or with `window_s` only in every other
    window (A and B alone in the others): the unloaded and loaded windows interleave in one
    run, so whatever else the machine does falls on both alike. All clients share one
    connection pool, as behind one load balancer."""
    plans: list[tuple[str, list[float]]] = []
    for i, team in enumerate(("A", "B")):
        plans += [(team, times) for times in schedule(0, seconds, POLITE_PERIOD_S, CLIENTS, seed + i)]
    phase = Phase(name, [], 0.0, window_s)
    if abuser:
        abusive = schedule(-head_start_s, seconds, ABUSIVE_PERIOD_S, CLIENTS, seed + 7)
        plans += [(abuser, [t for t in times if phase.abused(t)]) for times in abusive]
    phase.sent = sum(len(times) for _, times in plans)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=len(plans))
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        start = time.monotonic() + 0.5 + (head_start_s if abuser else 0.0)
        tasks = (_client(http, url, team, keys[team], times, start, phase.results) for team, times in plans)
        await asyncio.gather(*tasks)
        phase.elapsed_s = time.monotonic() - start + (head_start_s if abuser else 0.0)
    return phase


def measure(name: str, url: str, keys: dict[str, str], **options: Any) -> Phase:
    """`run_load` in a fresh process: the clients share neither the server's GIL nor this
    process's heap (a test process that exported a bundle has imported MLflow; its garbage
    collector's pauses would stall the clients and show as server latency)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_load_process, args=(name, url, keys, options, queue), daemon=True)
    proc.start()
    try:
        for _ in range(300):  # a cap, not a speed requirement; a client that died fails at once
            with contextlib.suppress(Empty):
                phase: Phase = queue.get(timeout=1)
                return phase
            assert proc.is_alive(), f"the load clients exited with {proc.exitcode}"
        raise AssertionError("the load clients did not finish in 300 s")
    finally:
        proc.join(timeout=30)


def _load_process(name: str, url: str, keys: dict[str, str], options: dict[str, Any], queue: Any) -> None:
    gc.collect()
    gc.freeze()
    gc.disable()  # a bounded run: the measuring clients must not pause to collect
    queue.put(asyncio.run(run_load(name, url, keys, **options)))


def create_keys(keys_file: Path, teams: tuple[str, ...]) -> dict[str, str]:
    """One key per team, by the real `keys create` command (in process)."""
    from workbench.cli import main

    keys = {}
    for team in teams:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            assert main(["keys", "create", "--team", team, "--keys-file", str(keys_file)]) == 0
        keys[team] = out.getvalue().strip()
    return keys


@dataclass
class Gateway:
    url: str
    keys: dict[str, str]
    stub: StubOpenAI


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    from workbench.testing.gateway_bundle import make_gateway_bundle
    from workbench.testing.redis_server import redis_server
    from workbench.testing.stub_openai import stub_openai
    from workbench.testing.workbench_server import WorkbenchServer

    root = tmp_path_factory.mktemp("gateway-load")
    limits = root / "limits.yaml"
    limits.write_text(yaml.safe_dump(LIMITS))
    keys_file = root / "keys.yaml"
    keys = create_keys(keys_file, ("A", "B", "C", "D"))
    with stub_openai(latency_s=STUB_LATENCY_S, capacity=STUB_CAPACITY) as stub, redis_server() as redis:
        bundle = make_gateway_bundle(root, stub.url)
        args = ("--keys", str(keys_file), "--limits", str(limits), "--redis", redis.url, "--log-level", "warning")
        server = WorkbenchServer(bundle, *args, cwd=REPO)
        try:
            server.wait_ready()
            yield Gateway(server.url, keys, stub)
        finally:
            server.stop()


def test_an_abusive_team_is_throttled_and_the_others_do_not_notice(gateway: Gateway) -> None:
    run = measure("C abusive", gateway.url, gateway.keys, seconds=40, abuser="C", window_s=WINDOW_S)
    control = measure("D unlimited", gateway.url, gateway.keys, seconds=8, abuser="D")
    alone, loaded = run.latencies("A", "B", abused=False), run.latencies("A", "B", abused=True)
    unlimited = control.latencies("A", "B")
    for label, values in (("alone", alone), ("C abusive", loaded), ("D unlimited", unlimited)):
        print(f"A+B {label}: p50 {percentile(values, 0.5) * 1000:.0f} ms, p99 {percentile(values, 0.99) * 1000:.0f} ms")
    print(f"C: {run.count('C', 200)} admitted, {run.count('C', 429)} refused in {run.elapsed_s:.1f} s")

    for phase in (run, control):  # nothing lost: every request answered, none a 5xx or a timeout
        statuses = [r.status for r in phase.results]
        assert len(statuses) == phase.sent
        assert set(statuses) <= {200, 429}, [s for s in statuses if s not in (200, 429)][:5]
        assert len(phase.latencies("A", "B")) == len(phase.of("A", "B"))  # A and B: never a 429

    refused = [r for r in run.of("C") if r.status == 429]
    assert len(refused) > 0.9 * len(run.of("C"))
    for r in refused:
        assert int(r.headers["retry-after"]) >= 1
        assert r.headers["x-ratelimit-remaining-requests"] == "0" and "x-ratelimit-remaining-tokens" in r.headers
    # At most the burst plus what refilled while C sent (+1 for the two clocks' rounding); at
    # least the burst: throttled, not shut out.
    assert ABUSER_RPM <= run.count("C", 200) <= ABUSER_RPM * (1 + run.elapsed_s / 60) + 1

    assert percentile(loaded, 0.99) <= 1.10 * percentile(alone, 0.99)
    # The control: the same abuse from a team without limits queues at the model, and A and B
    # wait behind it. Without this the test above could not fail.
    assert percentile(unlimited, 0.99) > 1.5 * percentile(alone, 0.99)
    assert gateway.stub.stats()["max_in_flight"] == STUB_CAPACITY
