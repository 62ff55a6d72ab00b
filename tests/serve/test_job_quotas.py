"""Rate limits and quotas apply to jobs: a job counts as a request when submitted, each of its
questions is charged as it runs (throttled by per-minute limits, stopped by a spent daily
quota), an evaluation is charged its real usage, and other teams are unaffected. Also: a
restarted server queues again the in-process jobs it left unfinished."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import Request

from tests.serve.conftest import serving
from tests.serve.test_jobs import make_jobs, wait_finished
from workbench.core.state import RequestState
from workbench.serve.app import create_app
from workbench.serve.jobs import InProcessBroker, Job, JobRunner, Jobs, JobStore, served_runner
from workbench.serve.jobs.quota import JobQuota
from workbench.serve.limits import Limiter, LimitsConfig, MemoryStore, TeamLimits
from workbench.serve.principal import Principal
from workbench.serve.service import ServedPipeline
from workbench.session import Workbench

QUESTIONS = ["Who picked up the remaining four packages?", "When did the monopoly end?", "Who bought them?"]
KEYS = {
    "red-key": Principal(key_id="k-red", team="red", tpm=50_000),
    "blue-key": Principal(key_id="k-blue", team="blue"),
}


class Clock:
    """The limiter's clock, moved only by the quota's `sleep`: waits are instant and exact."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def authenticate(request: Request) -> None:
    from workbench.core.errors import AuthError

    principal = KEYS.get(request.headers.get("x-api-key", ""))
    if principal is None:
        raise AuthError("missing or unknown API key")
    request.state.principal = principal


def quota_app(tmp_path: Path, served: ServedPipeline, config: LimitsConfig, clock: Clock) -> tuple[Any, Jobs, Limiter]:
    limiter = Limiter(config, MemoryStore(clock=clock))
    quota = JobQuota(limiter, sleep=clock.sleep)
    jobs = make_jobs(tmp_path, served, runner=served_runner(served, quota=quota), admit=quota.admit)
    return create_app(served, jobs=jobs, limiter=limiter, authenticate=authenticate), jobs, limiter


@pytest.fixture
def served(make_session: Callable[..., Workbench], make_served: Callable[..., ServedPipeline]) -> ServedPipeline:
    return make_served(make_session())


async def post(client: Any, key: str, questions: list[str]) -> Any:
    return await client.post("/v1/jobs", json={"kind": "batch", "questions": questions}, headers={"x-api-key": key})


async def test_a_job_is_a_request_over_the_limit_refused_at_submission_and_throttled_not_failed(
    tmp_path: Path, served: ServedPipeline
) -> None:
    clock = Clock()
    config = LimitsConfig(teams={"red": TeamLimits(rpm=1)})
    app, jobs, _ = quota_app(tmp_path, served, config, clock)
    async with serving(app) as client:
        first = await post(client, "red-key", QUESTIONS[:1])
        second = await post(client, "red-key", QUESTIONS[:1])
        blue = await post(client, "blue-key", QUESTIONS[:1])
        client.headers["x-api-key"] = "red-key"
        done = await wait_finished(client, first.json()["id"])
        client.headers["x-api-key"] = "blue-key"
        blue_done = await wait_finished(client, blue.json()["id"])
    assert first.status_code == 202 and blue.status_code == 202
    assert second.status_code == 429, second.text
    assert int(second.headers["retry-after"]) >= 1 and second.headers["x-ratelimit-remaining-requests"] == "0"
    assert "team red: requests per minute (1)" in second.json()["error"]["message"]
    with sqlite3.connect(jobs.store.path) as db:
        assert db.execute("SELECT count(*) FROM jobs").fetchone() == (2,)  # the refused job was never recorded
    # The submission took red's one request: its question waited for the bucket to refill, then ran.
    assert done["status"] == "done" and done["result"]["answers"][0]["error"] is None
    assert len(clock.slept) == 1 and 55 <= clock.slept[0] <= 60
    assert blue_done["status"] == "done" and blue_done["result"]["answers"][0]["error"] is None


async def test_a_spent_daily_quota_stops_the_batch_and_refuses_the_next_job_only_for_that_team(
    tmp_path: Path, served: ServedPipeline
) -> None:
    clock = Clock()
    # Reserve only the question's tokens, so the first question fits and its real usage spends the day.
    probe = Limiter(LimitsConfig(context_tokens=0, output_tokens=0))
    budget = probe.estimate(QUESTIONS[0]) + 1
    config = LimitsConfig(teams={"red": TeamLimits(daily_tokens=budget)}, context_tokens=0, output_tokens=0)
    app, _, limiter = quota_app(tmp_path, served, config, clock)
    async with serving(app) as client:
        job = await post(client, "red-key", QUESTIONS)
        client.headers["x-api-key"] = "red-key"
        done = await wait_finished(client, job.json()["id"])
        refused = await post(client, "red-key", QUESTIONS[:1])
        blue = await post(client, "blue-key", QUESTIONS[:1])
        client.headers["x-api-key"] = "blue-key"
        blue_done = await wait_finished(client, blue.json()["id"])
    answers = done["result"]["answers"]
    assert done["status"] == "done" and answers[0]["error"] is None
    used = answers[0]["tokens_in"] + answers[0]["tokens_out"]
    assert used > budget  # the real usage was charged, not the estimate
    assert answers[1]["error"].startswith("QuotaExceeded: rate limit exceeded: team red: tokens per day")
    assert answers[2]["error"].startswith("not run: QuotaExceeded:")
    assert clock.slept == []  # a daily quota is not waited out
    assert refused.status_code == 429 and "tokens per day" in refused.json()["error"]["message"]
    assert blue.status_code == 202 and blue_done["result"]["answers"][0]["error"] is None
    used_today, _ = limiter.store._state["team:red:daily_tokens"]  # type: ignore[attr-defined]
    assert used_today == used


async def test_an_eval_job_is_charged_its_real_usage(
    tmp_path: Path,
    make_session: Callable[..., Workbench],
    make_served: Callable[..., ServedPipeline],
    small_dataset: Path,
) -> None:
    import shutil

    wb = make_session()
    shutil.copytree(small_dataset, wb.root / "datasets" / "small_squad")
    served = make_served(wb)
    clock = Clock()
    store = MemoryStore(clock=clock)
    limiter = Limiter(LimitsConfig(teams={"red": TeamLimits(daily_tokens=10**9)}), store)
    quota = JobQuota(limiter, sleep=clock.sleep)
    jobs = make_jobs(tmp_path, served, runner=served_runner(served, quota=quota), admit=quota.admit)
    app = create_app(served, jobs=jobs, limiter=limiter, authenticate=authenticate)
    async with serving(app) as client:
        client.headers["x-api-key"] = "red-key"
        r = await client.post("/v1/jobs", json={"kind": "eval", "dataset": "small_squad", "limit": 3})
        done = await wait_finished(client, r.json()["id"], timeout_s=120)
    assert done["status"] == "done", done
    usage = done["result"]["usage"]
    assert usage["tokens"] > 0
    used, _ = store._state["team:red:daily_tokens"]
    assert used == usage["tokens"]


async def test_a_runner_without_quota_ignores_limits_and_a_quota_runner_refunds_a_failed_call(tmp_path: Path) -> None:
    from workbench.core.errors import ProviderUnavailable

    calls: list[str] = []

    async def ask(question: str) -> RequestState:
        calls.append(question)
        raise ProviderUnavailable("down")

    clock = Clock()
    limiter = Limiter(LimitsConfig(teams={"red": TeamLimits(tpm=5000)}), MemoryStore(clock=clock))
    runner = JobRunner(ask, quota=JobQuota(limiter, sleep=clock.sleep))
    job = Job.of("j", "batch", {"kind": "batch", "questions": QUESTIONS}, KEYS["red-key"], None)
    result = await runner.run(job)
    assert [a["error"].split(":")[0] for a in result["answers"]] == ["ProviderUnavailable"] * 3
    level, _ = limiter.store._state["team:red:tpm"]  # type: ignore[attr-defined]
    assert level == 5000  # each failed call's reservation was refunded


def test_a_job_carries_its_keys_limits_to_a_worker(tmp_path: Path) -> None:
    job = Job.of("j", "batch", {"kind": "batch", "questions": ["q"]}, KEYS["red-key"], None)
    again = Job.from_message(job.message())
    assert again == job and again.principal() == KEYS["red-key"]
    store = JobStore(tmp_path / "jobs.sqlite")
    store.create(job)
    assert store.job("j") == job


def test_an_older_job_store_gains_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE jobs (id TEXT PRIMARY KEY, kind TEXT NOT NULL, request TEXT NOT NULL, team TEXT NOT NULL, "
            "key_id TEXT NOT NULL, callback_url TEXT, status TEXT NOT NULL DEFAULT 'queued', attempts INTEGER NOT "
            "NULL DEFAULT 0, result TEXT, error TEXT, created_at REAL NOT NULL, started_at REAL, finished_at REAL)"
        )
        db.execute(
            "INSERT INTO jobs (id, kind, request, team, key_id, created_at) VALUES ('old', 'batch', '{}', 't', 'k', 1)"
        )
    store = JobStore(path)
    assert store.job("old") == Job("old", "batch", {}, "t", "k")
    view = store.get("old")
    assert view is not None and view.status == "queued"


def _dead_pid() -> int:
    proc = multiprocessing.get_context("spawn").Process(target=int)
    proc.start()
    proc.join()
    assert proc.pid is not None
    return proc.pid


async def test_a_restarted_server_queues_again_the_jobs_a_stopped_one_left(
    tmp_path: Path, served: ServedPipeline
) -> None:
    store = JobStore(tmp_path / "var" / "jobs.sqlite")
    request = {"kind": "batch", "questions": QUESTIONS[:1]}
    for job_id in ("orphan-queued", "orphan-running", "live"):
        store.create(Job(job_id, "batch", request, "anonymous", "anonymous"))
    store.start("orphan-running")
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE jobs SET owner_pid = ? WHERE id LIKE 'orphan-%'", (_dead_pid(),))
        db.execute("UPDATE jobs SET owner_pid = ? WHERE id = 'live'", (os.getppid(),))  # another live process
    jobs = Jobs(store, InProcessBroker(), runner=served_runner(served))
    async with serving(create_app(served, jobs=jobs)) as client:
        for job_id in ("orphan-queued", "orphan-running"):
            done = await wait_finished(client, job_id)
            assert done["status"] == "done" and done["result"]["answers"][0]["error"] is None
        await asyncio.sleep(0.2)
        live = (await client.get("/v1/jobs/live")).json()
    assert live["status"] == "queued"  # its owner is alive: not taken over
    assert [e for e, _ in store.events("orphan-running")] == ["queued", "started", "recovered", "started", "done"]
    assert store.claim_orphans(lambda pid: False) == [store.job("live")]
