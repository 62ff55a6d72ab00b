"""Jobs over a real RabbitMQ node (Debian's rabbitmq-server on loopback): `serve --broker` hands
jobs to `python -m workbench worker` processes; a worker SIGKILLed mid-job gets its jobs
redelivered and each finishes exactly once, none lost; queued jobs survive a broker restart."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.bundle.conftest import make_dataset
from tests.conftest import REPO, write_config
from workbench.serve.jobs import Jobs, JobStore
from workbench.serve.jobs.api import BatchJob
from workbench.serve.jobs.rabbitmq import RabbitMQBroker
from workbench.serve.principal import Principal
from workbench.testing._process import log_tail
from workbench.testing.rabbitmq_server import RabbitMQServer, rabbitmq_server
from workbench.testing.workbench_server import WorkbenchServer

pytestmark = pytest.mark.integration

QUESTION = "Who picked up the remaining four packages?"

RED = Principal(key_id="k-red", team="red")
# A worker whose model never answers in time: its jobs are mid-flight when it is killed.
SLOW_WORKER = """
import asyncio, sys
from workbench.bundle import Bundle
from workbench.serve.worker_command import run_worker
from workbench.testing.models import SlowModel

bundle = Bundle.open(sys.argv[1], verify=False)
slow = {"extractive": SlowModel(120, reply="never")}
asyncio.run(run_worker(bundle, sys.argv[2], concurrency=2, queue=sys.argv[3], models=slow))
"""


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The extractive pipeline (real embedder) over 12 paragraphs, exported as `serve` takes it."""
    from workbench.bundle import export_bundle
    from workbench.tracking import MlflowTracker

    root = tmp_path_factory.mktemp("jobs")
    dataset = make_dataset(root / "small", questions=8)
    config = write_config(root, dataset / "corpus.jsonl")
    tracker = MlflowTracker(root / "mlflow.db")
    report = export_bundle(str(config), "bundle", root=root, dataset=dataset, golden=3, tracker=tracker, register=False)
    return Path(report.path)


@pytest.fixture(scope="module")
def rabbit() -> Iterator[RabbitMQServer]:
    with rabbitmq_server() as server:
        yield server


class Worker:
    """A worker subprocess, its output in a file."""

    def __init__(self, cmd: list[str], log: Path) -> None:
        self.log = log
        env = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
        with log.open("wb") as out:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for w in started:
        w.stop()


def cli_worker(bundle: Path, url: str, queue: str, tmp_path: Path, n: int = 0) -> Worker:
    cmd = [sys.executable, "-m", "workbench", "worker", str(bundle), "--broker", url, "--queue", queue]
    return Worker([*cmd, "--concurrency", "2"], tmp_path / f"worker{n}.log")


async def wait_until(check: object, what: str, worker: Worker | None = None, timeout_s: float = 60) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.1)
    tail = log_tail(worker.log, 30) if worker is not None else ""
    raise AssertionError(f"timed out waiting for {what}\n{tail}")


def test_serve_with_a_broker_hands_jobs_to_a_worker_process(
    bundle: Path,
    rabbit: RabbitMQServer,
    workers: list[Worker],
    tmp_path: Path,
) -> None:
    server = WorkbenchServer(bundle, "--broker", rabbit.url, cwd=REPO)
    try:
        server.wait_ready()
        workers.append(cli_worker(bundle, rabbit.url, "workbench.jobs", tmp_path))
        r = httpx.post(f"{server.url}/v1/jobs", json={"kind": "batch", "questions": [QUESTION]}, timeout=10)
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        job: dict[str, object] = {}
        for _ in range(600):
            job = httpx.get(f"{server.url}/v1/jobs/{job_id}", timeout=10).json()
            if job["status"] in ("done", "failed"):
                break
            time.sleep(0.1)
    finally:
        server.stop()
    assert job["status"] == "done", (job, log_tail(workers[0].log, 30))
    answers = job["result"]["answers"]  # type: ignore[index]
    assert "Sky" in answers[0]["answer"] and answers[0]["sources"]
    events = JobStore(bundle / "var" / "jobs.sqlite").events(job_id)
    # Recorded by the API process, run by the worker process.
    assert [e for e, _ in events] == ["queued", "started", "done"] and events[0][1] != events[1][1]


async def test_a_worker_killed_mid_job_loses_nothing_and_runs_each_job_to_one_result(
    bundle: Path,
    rabbit: RabbitMQServer,
    workers: list[Worker],
    tmp_path: Path,
) -> None:
    queue = f"test.kill.{uuid.uuid4().hex[:8]}"
    store = JobStore(bundle / "var" / "jobs.sqlite")
    jobs = Jobs(store, RabbitMQBroker(rabbit.url, queue=queue))
    await jobs.start()
    try:
        submitted = [
            (await jobs.submit(BatchJob(kind="batch", questions=[QUESTION, f"question {i}"]), RED)).id for i in range(5)
        ]
    finally:
        await jobs.stop()
    slow = Worker([sys.executable, "-c", SLOW_WORKER, str(bundle), rabbit.url, queue], tmp_path / "slow.log")
    workers.append(slow)

    def started() -> list[str]:
        return [j for j in submitted if any(e == "started" for e, _ in store.events(j))]

    # Prefetch = concurrency = 2: the slow worker holds two jobs, running, when it is killed.
    await wait_until(lambda: len(started()) == 2, "the slow worker to start two jobs", slow)
    killed = started()
    os.kill(slow.proc.pid, signal.SIGKILL)
    slow.proc.wait(timeout=10)

    fresh = cli_worker(bundle, rabbit.url, queue, tmp_path, 1)
    workers.append(fresh)
    await wait_until(
        lambda: all((v := store.get(j)) is not None and v.status == "done" for j in submitted),
        "every job to finish",
        fresh,
    )
    for job_id in submitted:
        view = store.get(job_id)
        assert view is not None and view.status == "done" and view.team == "red"
        assert view.result is not None and "Sky" in view.result["answers"][0]["answer"]
        events = [e for e, _ in store.events(job_id)]
        assert events.count("done") == 1 and "failed" not in events
        if job_id in killed:  # redelivered: started by the killed worker, then by the fresh one
            assert events == ["queued", "started", "started", "done"] and view.attempts == 2
        else:
            assert events == ["queued", "started", "done"] and view.attempts == 1
        assert store.events(job_id)[-1][1] == fresh.proc.pid


async def test_queued_jobs_survive_a_broker_restart(
    bundle: Path,
    rabbit: RabbitMQServer,
    workers: list[Worker],
    tmp_path: Path,
) -> None:
    import aio_pika

    queue = f"test.restart.{uuid.uuid4().hex[:8]}"
    store = JobStore(bundle / "var" / "jobs.sqlite")
    jobs = Jobs(store, RabbitMQBroker(rabbit.url, queue=queue))
    await jobs.start()
    try:
        submitted = [(await jobs.submit(BatchJob(kind="batch", questions=[QUESTION]), RED)).id for _ in range(3)]
    finally:
        await jobs.stop()

    await asyncio.to_thread(rabbit.restart)

    connection = await aio_pika.connect(rabbit.url)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, durable=True, passive=True)
        assert declared.declaration_result.message_count == 3

    worker = cli_worker(bundle, rabbit.url, queue, tmp_path)
    workers.append(worker)
    await wait_until(
        lambda: all((v := store.get(j)) is not None and v.status == "done" for j in submitted),
        "the jobs queued before the restart to finish",
        worker,
    )
    assert all([e for e, _ in store.events(j)] == ["queued", "started", "done"] for j in submitted)


@pytest.mark.skipif(__import__("shutil").which("redis-server") is None, reason="redis-server is not installed")
def test_a_worker_charges_jobs_to_their_team_through_the_apis_redis(
    bundle: Path,
    rabbit: RabbitMQServer,
    workers: list[Worker],
    tmp_path: Path,
) -> None:
    """serve and worker share one Redis: the worker's charge for a job's questions is what the
    API then refuses the team's next job on; another team is unaffected."""
    import yaml

    from workbench.serve.keys import create_key
    from workbench.serve.limits import Limiter, LimitsConfig
    from workbench.testing.redis_server import redis_server

    keys = tmp_path / "keys.yaml"
    _, red = create_key(keys, "red")
    _, blue = create_key(keys, "blue")
    # Only the question is reserved: the first question fits, its real usage spends red's day.
    budget = Limiter(LimitsConfig(context_tokens=0, output_tokens=0)).estimate(QUESTION) + 1
    limits = tmp_path / "limits.yaml"
    limits.write_text(
        yaml.safe_dump({"teams": {"red": {"daily_tokens": budget}}, "context_tokens": 0, "output_tokens": 0})
    )
    with redis_server() as redis:
        gateway = ("--limits", str(limits), "--redis", redis.url)
        server = WorkbenchServer(bundle, "--broker", rabbit.url, "--keys", str(keys), *gateway, cwd=REPO)
        try:
            server.wait_ready()
            cmd = [sys.executable, "-m", "workbench", "worker", str(bundle), "--broker", rabbit.url, *gateway]
            workers.append(Worker(cmd, tmp_path / "quota-worker.log"))

            def submit(key: str, questions: list[str]) -> httpx.Response:
                body = {"kind": "batch", "questions": questions}
                return httpx.post(f"{server.url}/v1/jobs", json=body, headers={"x-api-key": key}, timeout=10)

            def finished(key: str, job_id: str) -> dict[str, Any]:
                for _ in range(600):
                    job = httpx.get(f"{server.url}/v1/jobs/{job_id}", headers={"x-api-key": key}, timeout=10).json()
                    if job["status"] in ("done", "failed"):
                        return dict(job)
                    time.sleep(0.1)
                raise AssertionError(f"job {job_id} did not finish\n{log_tail(workers[0].log, 30)}")

            first = submit(red, [QUESTION, "When did the monopoly end?", "Who won two packages?"])
            assert first.status_code == 202, first.text
            done = finished(red, first.json()["id"])
            refused = submit(red, [QUESTION])
            other = submit(blue, [QUESTION])
            assert other.status_code == 202, other.text
            blue_done = finished(blue, other.json()["id"])
        finally:
            server.stop()
    answers = done["result"]["answers"]
    assert answers[0]["error"] is None and "Sky" in answers[0]["answer"]
    assert answers[0]["tokens_in"] + answers[0]["tokens_out"] > budget
    assert answers[1]["error"].startswith("QuotaExceeded: rate limit exceeded: team red: tokens per day")
    assert answers[2]["error"].startswith("not run: QuotaExceeded")
    # The API refuses on what the worker charged: the count is shared through Redis.
    assert refused.status_code == 429 and "team red: tokens per day" in refused.json()["error"]["message"]
    assert int(refused.headers["retry-after"]) >= 1
    assert blue_done["status"] == "done" and blue_done["result"]["answers"][0]["error"] is None
