"""Issue 9 section 4, fault tests with the gateway on, against real servers: `python -m workbench
serve` (uvicorn) with `--keys`, `--limits` and `--redis` on a real `redis-server`, and a real
OpenAI-compatible stub model as the primary.

- Redis stops under load from two teams: fail closed (a clean 503 with Retry-After, the
  degraded gauge at 1) or fail open (admitted, uncounted); it comes back: requests are admitted
  again, the gauge returns to 0 and the small team's rpm bites again (and, store level, no
  connection pooled before the outage fails once more after it).
- The primary fails half its calls: every request gets the primary's or the fallback's answer
  or, with no fallback, a clean 503; failed provider calls are refunded, so the team's daily
  token count is exactly the usage its answered requests reported.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.bundle.conftest import make_dataset
from tests.conftest import REPO, write_config
from workbench.testing.redis_server import RedisServer, redis_server
from workbench.testing.stub_openai import ANSWER, StubOpenAI, stub_openai
from workbench.testing.workbench_server import WorkbenchServer as Server

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]

QUESTIONS = [
    "Who picked up the remaining four packages?",
    "When did the monopoly end?",
    "How many packages were there?",
    "Who was responsible for this?",
]
KINDS = ("ask", "chat", "stream")
SMALL_RPM = 4
REQUESTS = 60  # per test of the flaky primary
DAILY_TOKENS = 10_000_000
DAILY_KEY = "workbench:limits:team:{team}:daily_tokens"  # RedisStore's prefix + the limiter's spec key


# The pipeline is kept cheap, so the gateway and the model dominate a request: BM25 without
# re-ranking (no query embedding), and only the size guard (the stub's fixed answer is not
# grounded in the context, so no output guard either).
CHEAP: dict[str, Any] = {
    "retrieval": {"mode": "bm25", "top_k": 3, "reranker": {"kind": "none"}},
    "guardrails": {"input": [{"check": "max_size", "max_chars": 2000}], "output": []},
}

# -- bundles ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workspace:
    root: Path
    dataset: Path
    tracker: Any


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """The first 12 squad_disfl paragraphs and 8 of their questions; the bundles exported here
    share one index (only the first export embeds the corpus)."""
    from workbench.tracking import MlflowTracker

    root = tmp_path_factory.mktemp("gateway-faults")
    dataset = make_dataset(root / "small", questions=8)
    return Workspace(root, dataset, MlflowTracker(root / "mlflow.db"))


def _export(ws: Workspace, out: str, fakes: dict[str, Any] | None = None, **overrides: Any) -> Path:
    # golden=0: with a primary failing half the time the golden set could not replay exactly
    # (a fallback answers differently), and /readyz would stay 503.
    from workbench.bundle import export_bundle

    overrides = CHEAP | overrides
    config = write_config(ws.root, ws.dataset / "corpus.jsonl", **overrides)
    report = export_bundle(
        str(config), out, root=ws.root, dataset=ws.dataset, golden=0, tracker=ws.tracker, register=False, models=fakes
    )
    return Path(report.path)


@pytest.fixture(scope="module")
def plain_bundle(workspace: Workspace) -> Path:
    """The extractive pipeline: its model never fails, so only the limiter is under test."""
    return _export(workspace, "plain")


@pytest.fixture(scope="module")
def flaky_stub() -> Iterator[StubOpenAI]:
    with stub_openai(latency_s=0.02, capacity=16, fail_rate=0.5, seed=7) as stub:
        yield stub


@pytest.fixture(scope="module")
def flaky_bundles(workspace: Workspace, flaky_stub: StubOpenAI) -> dict[bool, Path]:
    """{has a fallback: bundle}, the primary being the flaky stub. The export answers with a
    scripted stand-in for the primary, so the stub's failures play no part in it."""
    from workbench.testing.models import ScriptedModel

    bundles = {}
    for fallback in (True, False):
        primary = {
            "provider": "openai_compat",
            "base_url": flaky_stub.url,
            "model": "stub",
            "fallbacks": ["extractive"] if fallback else [],
            "timeout_s": 5,
            # No retries, and a breaker that never opens within one test's calls: each request
            # meets the flaky model exactly once (the breaker is test_faults.py's subject).
            "retry": {"max_attempts": 1, "base_delay_s": 0.0, "max_delay_s": 0.0},
            "breaker": {"failure_rate": 1.0, "window": 10 * REQUESTS, "min_calls": 10 * REQUESTS},
        }
        bundles[fallback] = _export(
            workspace,
            "with-fallback" if fallback else "no-fallback",
            {"primary": ScriptedModel([ANSWER], repeat_last=True)},
            name="flaky-primary",
            models={"primary": primary, "extractive": {"provider": "extractive", "min_support": 0.25}},
            generation={"model": "primary", "prompt": "plain"},
        )
    return bundles


# -- requests ---------------------------------------------------------------------------------


async def _call(client: httpx.AsyncClient, key: str, model: str, kind: str, question: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    if kind == "ask":
        return await client.post("/v1/ask", json={"question": question}, headers=headers)
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": question}]}
    if kind == "stream":
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return await client.post("/v1/chat/completions", json=body, headers=headers)


async def _model_id(client: httpx.AsyncClient, key: str) -> str:
    r = await client.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    model: str = r.json()["data"][0]["id"]
    return model


async def _degraded(client: httpx.AsyncClient) -> float:
    text = (await client.get("/metrics")).text
    found = re.search(r"^workbench_limiter_degraded (\S+)$", text, re.MULTILINE)
    assert found is not None, "no workbench_limiter_degraded in /metrics"
    return float(found.group(1))


async def _until(
    check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 30, interval_s: float = 0.05
) -> None:
    """Poll `check` until it holds; bounded by a number of polls."""
    for _ in range(int(timeout_s / interval_s)):
        if await check():
            return
        await asyncio.sleep(interval_s)
    raise AssertionError(f"gave up waiting until {what}")


def _check_503(r: httpx.Response, code: str | None = None) -> None:
    """A clean 503: Retry-After, the error table's type, one line of message."""
    assert int(r.headers["retry-after"]) >= 1
    error = r.json()["error"]
    assert error["type"] == "service_unavailable", error
    assert error["message"] and "\n" not in error["message"] and "Traceback" not in error["message"]
    if code is not None:
        assert error["code"] == code, error


def _check_429(r: httpx.Response) -> None:
    assert int(r.headers["retry-after"]) >= 1 and r.headers["x-ratelimit-remaining-requests"] == "0"
    assert r.json()["error"]["type"] == "rate_limit_exceeded"


def _keys_and_limits(folder: Path, teams: dict[str, dict[str, int]]) -> tuple[Path, Path, dict[str, str]]:
    from workbench.serve.keys import create_key

    keys_file, limits_file = folder / "keys.yaml", folder / "limits.yaml"
    keys = {team: create_key(keys_file, team)[1] for team in teams}
    limits_file.write_text(yaml.safe_dump({"teams": teams}))
    return keys_file, limits_file, keys


# -- Redis restarts mid-load ------------------------------------------------------------------


@dataclass
class Answered:
    team: str
    kind: str
    sent: float
    received: float
    response: httpx.Response | None  # None: no response at all (a lost request)
    error: str = ""


@dataclass
class Load:
    """Workers asking in a loop, per team and kind, until `stop`; every outcome is kept."""

    client: httpx.AsyncClient
    keys: dict[str, str]
    model: str
    results: list[Answered] = field(default_factory=list)
    stopping: bool = False

    async def worker(self, team: str, kind: str) -> None:
        n = 0
        while not self.stopping:
            sent = time.monotonic()
            try:
                r = await _call(self.client, self.keys[team], self.model, kind, QUESTIONS[n % len(QUESTIONS)])
                self.results.append(Answered(team, kind, sent, time.monotonic(), r))
            except httpx.HTTPError as exc:
                self.results.append(Answered(team, kind, sent, time.monotonic(), None, repr(exc)))
            n += 1
            await asyncio.sleep(0.01)  # pacing: a steady load rather than a spin on instant refusals

    def seen(self, team: str, status: int, after: float = 0.0) -> int:
        return sum(
            1
            for a in self.results
            if a.team == team and a.sent > after and a.response is not None and a.response.status_code == status
        )


async def _redis_restart_scenario(url: str, redis: RedisServer, keys: dict[str, str]) -> tuple[Load, dict[str, float]]:
    marks: dict[str, float] = {}
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        load = Load(client, keys, await _model_id(client, keys["big"]))
        workers = [asyncio.create_task(load.worker(team, kind)) for team in ("big", "small") for kind in KINDS]
        try:

            async def limited() -> bool:
                return load.seen("small", 429) > 0 and load.seen("big", 200) >= 3

            await _until(limited, "the small team is over its rpm while Redis is up")
            assert await _degraded(client) == 0
            marks["stop"] = time.monotonic()
            await asyncio.to_thread(redis.stop)

            async def degraded() -> bool:
                return await _degraded(client) == 1

            await _until(degraded, "the limiter reports itself degraded")
            marks["degraded"] = time.monotonic()

            async def answered_while_down() -> bool:
                done = [a for a in load.results if a.sent > marks["degraded"]]
                return all(sum(a.team == team for a in done) >= 6 for team in keys)

            await _until(answered_while_down, "both teams got answers while Redis was down")
            marks["restart"] = time.monotonic()
            await asyncio.to_thread(redis.start)
            marks["restarted"] = time.monotonic()

            async def recovered() -> bool:
                return await _degraded(client) == 0

            await _until(recovered, "the limiter recovers")
            marks["recovered"] = time.monotonic()

            async def limited_again() -> bool:
                after = marks["recovered"]
                return load.seen("small", 429, after) > 0 and load.seen("big", 200, after) >= 3

            await _until(limited_again, "the small team is over its rpm again")
            marks["end"] = time.monotonic()
        finally:
            load.stopping = True
            await asyncio.gather(*workers)
    return load, marks


async def test_a_restarted_redis_gets_fresh_connections_not_the_dead_ones() -> None:
    """The connections pooled before Redis went down are not reused once it is back: with 8
    idle in the pool, one failed call while it is down, then every call after the restart
    succeeds (a reset connection passes the pool's checkout check and would fail once more)."""
    from workbench.serve.limits import RedisStore
    from workbench.serve.limits.store import Spec

    items = [(Spec("team:t:rpm", "bucket", 1e9), 1.0)]
    with redis_server() as redis:
        store = RedisStore(redis.url)
        try:
            await asyncio.gather(*(store.apply("reserve", items) for _ in range(8)))
            await asyncio.to_thread(redis.stop)
            with pytest.raises(Exception, match="(?i)connect|closed|refused|reset"):
                await store.apply("reserve", items)
            await asyncio.to_thread(redis.start)
            for _ in range(3):
                outcomes = await asyncio.gather(
                    *(store.apply("reserve", items) for _ in range(8)), return_exceptions=True
                )
                assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
        finally:
            await store.aclose()


@pytest.mark.parametrize("policy", ["closed", "open"])
def test_redis_restarts_mid_load_and_the_limits_recover(plain_bundle: Path, tmp_path: Path, policy: str) -> None:
    shutil.rmtree(plain_bundle / "var", ignore_errors=True)
    keys_file, limits_file, keys = _keys_and_limits(tmp_path, {"big": {"rpm": 100_000}, "small": {"rpm": SMALL_RPM}})
    with redis_server() as redis:
        args = ["--keys", str(keys_file), "--limits", str(limits_file), "--redis", redis.url]
        server = Server(plain_bundle, *args, "--limiter-failure", policy, cwd=REPO)
        try:
            server.wait_ready()
            load, marks = asyncio.run(_redis_restart_scenario(server.url, redis, keys))
        finally:
            log = server.stop()

    results = load.results
    lost = [a.error for a in results if a.response is None]
    assert not lost, lost[:3]  # every request answered
    allowed = {200, 429, 503} if policy == "closed" else {200, 429}
    statuses = {a.response.status_code for a in results if a.response is not None}
    assert statuses <= allowed, [a.response.text for a in results if a.response and a.response.status_code >= 500][:3]
    for a in results:
        assert a.response is not None
        if a.response.status_code == 503:
            _check_503(a.response, "LimiterUnavailable")
        elif a.response.status_code == 429:
            assert a.team == "small"
            _check_429(a.response)
    assert "Traceback" not in log

    def window(team: str, start: float, end: float = float("inf")) -> list[httpx.Response]:
        """The team's responses to requests sent after `start` and answered before `end`."""
        return [a.response for a in results if a.team == team and a.response and start < a.sent and a.received < end]

    def codes(responses: list[httpx.Response]) -> set[int]:
        return {r.status_code for r in responses}

    before = {team: window(team, 0, marks["stop"]) for team in keys}
    assert codes(before["big"]) == {200} and codes(before["small"]) == {200, 429}

    # Sent once the gauge said degraded, answered before Redis was started again: Redis was down.
    down = {team: window(team, marks["degraded"], marks["restart"]) for team in keys}
    assert all(len(responses) >= 6 for responses in down.values()), down
    if policy == "closed":
        assert codes(down["big"]) == codes(down["small"]) == {503}
    else:
        # Admitted uncounted: the small team, already over its rpm, is let through too.
        assert codes(down["big"]) == codes(down["small"]) == {200}
        assert not any("x-ratelimit-remaining-requests" in r.headers for r in down["small"])

    after = {team: window(team, marks["recovered"]) for team in keys}
    assert codes(after["big"]) == {200} and 429 in codes(after["small"]) and codes(after["small"]) <= {200, 429}
    # The small team's admissions counted since Redis went down: all from the restarted Redis,
    # which came back empty (no persistence), so a fresh bucket of SMALL_RPM, and no more.
    counted = [
        int(r.headers["x-ratelimit-remaining-requests"])
        for r in window("small", marks["degraded"])
        if r.status_code == 200 and "x-ratelimit-remaining-requests" in r.headers
    ]
    bound = SMALL_RPM * (1 + (marks["end"] - marks["restart"]) / 60)  # the bucket refills meanwhile
    assert SMALL_RPM <= len(counted) <= bound and max(counted) == SMALL_RPM - 1, (counted, bound)
    print(
        f"{policy}: {len(results)} requests; while Redis was down {sum(map(len, down.values()))} "
        f"answered {sorted(codes(down['big']))}; after it came back the small team got {len(counted)} admitted"
    )


# -- the primary fails half the time ----------------------------------------------------------


def _outcome(kind: str, r: httpx.Response) -> tuple[str, int]:
    """('primary' | 'fallback' | 'unavailable', tokens the response reported); fails on any
    other answer."""
    if r.status_code == 503:
        _check_503(r)
        return "unavailable", 0
    assert r.status_code == 200, r.text
    if kind == "stream":
        lines = [line.removeprefix("data: ") for line in r.text.splitlines() if line.startswith("data: ")]
        assert lines[-1] == "[DONE]", r.text  # a stream that started finishes
        chunks = [json.loads(line) for line in lines[:-1]]
        answer = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        (final,) = [c for c in chunks if c.get("workbench")]
        models, tokens = final["workbench"]["models"], chunks[-1]["usage"]["total_tokens"]
    elif kind == "chat":
        body = r.json()
        answer, models = body["choices"][0]["message"]["content"], body["workbench"]["models"]
        tokens = body["usage"]["total_tokens"]
    else:
        body = r.json()
        answer, models, tokens = body["answer"], body["models"], body["tokens_in"] + body["tokens_out"]
    if models == ["primary"]:
        assert answer.strip() == ANSWER, answer
        return "primary", tokens
    assert "extractive" in models and answer.strip() != ANSWER, (models, answer)
    return "fallback", tokens


async def _flaky_load(url: str, key: str) -> list[tuple[str, httpx.Response]]:
    gate = asyncio.Semaphore(12)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        model = await _model_id(client, key)

        async def one(n: int) -> tuple[str, httpx.Response]:
            kind = KINDS[n % len(KINDS)]
            async with gate:
                return kind, await _call(client, key, model, kind, QUESTIONS[n % len(QUESTIONS)])

        return await asyncio.wait_for(asyncio.gather(*(one(n) for n in range(REQUESTS))), timeout=90)


def _charged(redis_url: str, team: str, expected: int, polls: int = 100) -> float:
    """The team's daily tokens counted in Redis, polled until `expected` (a stream settles just
    after its [DONE] went out) or for `polls` * 50 ms; the last count read."""
    from redis import Redis

    with Redis.from_url(redis_url, decode_responses=True) as client:
        for _ in range(polls):
            charged = float(client.hget(DAILY_KEY.format(team=team), "u") or 0)
            if charged == expected:
                break
            time.sleep(0.05)
    return charged


def _logged_statuses(folder: Path) -> dict[int, int]:
    """{status: requests} of the request log's model requests (the retrieval probe left out)."""
    import duckdb

    counts: dict[int, int] = {}
    for path in folder.glob("*.duckdb"):
        with duckdb.connect(str(path), read_only=True) as con:
            sql = "SELECT status, count(*) FROM requests WHERE endpoint <> '/v1/retrieve' GROUP BY status"
            for status, n in con.execute(sql).fetchall():
                counts[status] = counts.get(status, 0) + n
    return counts


@pytest.mark.parametrize("fallback", [True, False], ids=["with-fallback", "no-fallback"])
def test_the_primary_failing_half_the_time_with_the_gateway_on(
    flaky_bundles: dict[bool, Path], flaky_stub: StubOpenAI, tmp_path: Path, fallback: bool
) -> None:
    from workbench.core.tokens import estimate_tokens
    from workbench.serve.limits import LimitsConfig

    bundle = flaky_bundles[fallback]
    shutil.rmtree(bundle / "var", ignore_errors=True)
    keys_file, limits_file, keys = _keys_and_limits(tmp_path, {"acct": {"rpm": 100_000, "daily_tokens": DAILY_TOKENS}})
    calls_before = flaky_stub.stats()
    with redis_server() as redis:
        server = Server(bundle, "--keys", str(keys_file), "--limits", str(limits_file), "--redis", redis.url, cwd=REPO)
        try:
            server.wait_ready()
            results = asyncio.run(_flaky_load(server.url, keys["acct"]))
            outcomes = [_outcome(kind, r) for kind, r in results]
            used = sum(tokens for _, tokens in outcomes)
            # Failed provider calls are refunded: the team pays for what was answered, no more.
            # (Kept, each failed request would cost its whole reservation, ~1300 tokens.)
            charged = _charged(redis.url, "acct", used)
            assert charged == used, f"the team was charged {charged:g} tokens for {used} answered"
            # What a client sees: the remaining daily tokens after one more (retrieval only) request.
            probe = httpx.post(
                f"{server.url}/v1/retrieve",
                json={"question": QUESTIONS[0]},
                headers={"Authorization": f"Bearer {keys['acct']}"},
                timeout=30,
            )
            assert probe.status_code == 200, probe.text
            reserved = estimate_tokens(QUESTIONS[0]) + LimitsConfig().context_tokens
            assert int(probe.headers["x-ratelimit-remaining-tokens"]) == DAILY_TOKENS - used - reserved
        finally:
            log = server.stop()
    calls = {k: flaky_stub.stats()[k] - calls_before[k] for k in ("calls", "failures")}
    logged = _logged_statuses(bundle / "var" / "requests")

    got = [outcome for outcome, _ in outcomes]
    failed = "fallback" if fallback else "unavailable"
    # One model call per request, and each failed call is exactly one fallback answer (or 503).
    assert len(got) == REQUESTS and calls["calls"] == REQUESTS and got.count(failed) == calls["failures"] > 0
    for kind in KINDS:  # ask, chat and stream each saw the primary answer and a failure handled
        seen = {outcome for (k, _), (outcome, _) in zip(results, outcomes, strict=True) if k == kind}
        assert seen == {"primary", failed}, (kind, seen)
    assert "Traceback" not in log
    assert sum(logged.values()) == REQUESTS and set(logged) <= {200, 503}, logged  # none lost, none a 500
    print(
        f"fallback={fallback}: {got.count('primary')} primary, {got.count('fallback')} fallback, "
        f"{got.count('unavailable')} 503 of {REQUESTS}; stub {calls['calls']} calls, {calls['failures']} failed; "
        f"{used} tokens charged"
    )
