"""Async jobs with the in-process broker: `POST /v1/jobs` answers at once, the server's own
workers run the job, `GET /v1/jobs/{id}` shows it; the store's transitions are idempotent (a
redelivered job is not run twice); callbacks only to loopback or the allow-list; auth, the
caller's team and the quota seam apply to jobs."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Request

from tests.conftest import assert_one_line_error, run_cli
from tests.serve.conftest import serving
from workbench.core.errors import AuthError, ConfigError, ProviderUnavailable
from workbench.serve.app import create_app
from workbench.serve.errors import ApiError
from workbench.serve.jobs import (
    CallbackPolicy,
    InProcessBroker,
    Job,
    JobRunner,
    Jobs,
    JobStore,
    JobWorker,
    broker_from_url,
    served_runner,
)
from workbench.serve.principal import Principal
from workbench.serve.service import ServedPipeline
from workbench.session import Workbench
from workbench.testing.models import SlowModel

QUESTIONS = ["Who picked up the remaining four packages?", "When did the monopoly end?"]


async def wait_finished(client: httpx.AsyncClient, job_id: str, timeout_s: float = 20) -> dict[str, Any]:
    for _ in range(int(timeout_s / 0.02)):
        r = await client.get(f"/v1/jobs/{job_id}")
        assert r.status_code == 200, r.text
        if r.json()["status"] in ("done", "failed"):
            return dict(r.json())
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish: {r.json()}")


@pytest.fixture
def session(make_session: Callable[..., Workbench], small_dataset: Path) -> Workbench:
    wb = make_session()
    shutil.copytree(small_dataset, wb.root / "datasets" / "small_squad")
    return wb


@pytest.fixture
def served(session: Workbench, make_served: Callable[..., ServedPipeline]) -> ServedPipeline:
    return make_served(session)


def make_jobs(tmp_path: Path, served: ServedPipeline, **kwargs: Any) -> Jobs:
    kwargs.setdefault("runner", served_runner(served))
    return Jobs(JobStore(tmp_path / "var" / "jobs.sqlite"), InProcessBroker(), **kwargs)


async def test_a_batch_job_is_accepted_at_once_then_answered_with_sources(
    tmp_path: Path, served: ServedPipeline
) -> None:
    jobs = make_jobs(tmp_path, served)
    async with serving(create_app(served, jobs=jobs)) as client:
        r = await client.post("/v1/jobs", json={"kind": "batch", "questions": QUESTIONS})
        assert r.status_code == 202, r.text
        accepted = r.json()
        assert accepted["status"] == "queued" and r.headers["location"] == accepted["url"]
        job = await wait_finished(client, accepted["id"])
    assert job["status"] == "done" and job["kind"] == "batch" and job["attempts"] == 1
    assert job["team"] == "anonymous" and job["key_id"] == "anonymous"
    answers = job["result"]["answers"]
    assert [a["question"] for a in answers] == QUESTIONS
    assert "Sky" in answers[0]["answer"] and answers[0]["sources"] and answers[0]["error"] is None
    assert {"doc_id", "start", "end", "score", "text"} <= set(answers[0]["sources"][0])
    assert job["created_at"] <= job["started_at"] <= job["finished_at"]
    assert [e for e, _ in jobs.store.events(job["id"])] == ["queued", "started", "done"]


async def test_the_post_answers_before_a_slow_job_runs(
    tmp_path: Path, make_session: Callable[..., Workbench], make_served: Callable[..., ServedPipeline]
) -> None:
    served = make_served(make_session(fakes={"extractive": SlowModel(0.5, reply="slow answer")}))
    jobs = make_jobs(tmp_path, served)
    async with serving(create_app(served, jobs=jobs)) as client:
        r = await client.post("/v1/jobs", json={"kind": "batch", "questions": QUESTIONS})
        assert r.status_code == 202
        first = (await client.get(f"/v1/jobs/{r.json()['id']}")).json()
        assert first["status"] in ("queued", "running") and first["result"] is None
        job = await wait_finished(client, r.json()["id"])
    assert [a["answer"] for a in job["result"]["answers"]] == ["slow answer", "slow answer"]


async def test_an_eval_job_reports_metrics_and_an_unknown_dataset_fails(tmp_path: Path, served: ServedPipeline) -> None:
    jobs = make_jobs(tmp_path, served)
    async with serving(create_app(served, jobs=jobs)) as client:
        ok = await client.post("/v1/jobs", json={"kind": "eval", "dataset": "small_squad", "limit": 3})
        missing = await client.post("/v1/jobs", json={"kind": "eval", "dataset": "nowhere"})
        done = await wait_finished(client, ok.json()["id"], timeout_s=60)
        failed = await wait_finished(client, missing.json()["id"])
    assert done["status"] == "done", done
    assert done["result"]["dataset"] == "small_squad" and done["result"]["questions"] == 3
    assert done["result"]["metrics"] and all(isinstance(k, str) for k in done["result"]["metrics"])
    assert failed["status"] == "failed" and failed["result"] is None
    assert "DatasetError" in failed["error"] and "nowhere" in failed["error"]


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "batch", "questions": []},
        {"kind": "batch", "questions": [""]},
        {"kind": "eval", "dataset": "../../etc"},
        {"kind": "eval", "dataset": "/tmp/x"},
        {"kind": "eval", "dataset": "small_squad", "limit": 0},
        {"kind": "sweep"},
        {"kind": "batch", "questions": ["q"], "extra": 1},
    ],
)
async def test_malformed_jobs_are_422_and_not_recorded(tmp_path: Path, served: ServedPipeline, body: Any) -> None:
    jobs = make_jobs(tmp_path, served)
    async with serving(create_app(served, jobs=jobs)) as client:
        r = await client.post("/v1/jobs", json=body)
        assert r.status_code == 422, r.text
        assert (await client.get("/v1/jobs/nope")).status_code == 404
    assert jobs.broker.queue.empty()  # type: ignore[attr-defined]


class Receiver:
    """A loopback HTTP server recording the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["content-length"]))
                received.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/done"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


async def test_a_loopback_callback_gets_the_finished_job_and_others_are_refused(
    tmp_path: Path, served: ServedPipeline, receiver: Receiver
) -> None:
    jobs = make_jobs(tmp_path, served)
    async with serving(create_app(served, jobs=jobs)) as client:
        r = await client.post(
            "/v1/jobs", json={"kind": "batch", "questions": QUESTIONS[:1], "callback_url": receiver.url}
        )
        assert r.status_code == 202
        job = await wait_finished(client, r.json()["id"])
        for _ in range(200):
            if receiver.received:
                break
            await asyncio.sleep(0.02)
        for url in ("http://example.com/hook", "ftp://127.0.0.1/x", "http://user:pw@127.0.0.1/x", "not a url"):
            refused = await client.post("/v1/jobs", json={"kind": "batch", "questions": ["q"], "callback_url": url})
            assert refused.status_code == 422, (url, refused.text)
            assert refused.json()["error"]["param"] == "callback_url"
    assert receiver.received == [job]


def test_the_callback_allow_list() -> None:
    policy = CallbackPolicy(["hooks.internal", "10.0.0.5"])
    for ok in ("http://localhost:9/x", "http://127.0.0.2/x", "http://[::1]:8080/x", "https://hooks.internal/cb"):
        assert policy.refusal(ok) is None, ok
    assert policy.refusal("http://10.0.0.5/cb") is None
    assert "neither loopback nor" in (policy.refusal("http://hooks.internal.evil.com/cb") or "")
    assert "neither loopback nor" in (CallbackPolicy().refusal("https://hooks.internal/cb") or "")


def _principals(request: Request) -> None:
    keys = {"red-key": Principal(key_id="k-red", team="red"), "blue-key": Principal(key_id="k-blue", team="blue")}
    principal = keys.get(request.headers.get("x-api-key", ""))
    if principal is None:
        raise AuthError("missing or unknown API key")
    request.state.principal = principal


async def test_jobs_need_auth_record_the_team_and_stay_within_it(tmp_path: Path, served: ServedPipeline) -> None:
    async def authenticate(request: Request) -> None:
        _principals(request)

    jobs = make_jobs(tmp_path, served)
    async with serving(create_app(served, jobs=jobs, authenticate=authenticate)) as client:
        body = {"kind": "batch", "questions": QUESTIONS[:1]}
        assert (await client.post("/v1/jobs", json=body)).status_code == 401
        r = await client.post("/v1/jobs", json=body, headers={"x-api-key": "red-key"})
        assert r.status_code == 202
        job_id = r.json()["id"]
        assert (await client.get(f"/v1/jobs/{job_id}")).status_code == 401
        blue = await client.get(f"/v1/jobs/{job_id}", headers={"x-api-key": "blue-key"})
        assert blue.status_code == 404
        client.headers["x-api-key"] = "red-key"
        job = await wait_finished(client, job_id)
    assert job["team"] == "red" and job["key_id"] == "k-red" and job["status"] == "done"


async def test_the_admit_seam_refuses_before_anything_is_enqueued(tmp_path: Path, served: ServedPipeline) -> None:
    seen: list[tuple[str, str]] = []

    async def admit(request: Request, principal: Principal, body: Any) -> None:
        seen.append((principal.team, body.kind))
        raise ApiError(429, "team quota exhausted", "rate_limited")

    jobs = make_jobs(tmp_path, served, admit=admit)
    async with serving(create_app(served, jobs=jobs)) as client:
        r = await client.post("/v1/jobs", json={"kind": "eval", "dataset": "small_squad"})
    assert r.status_code == 429 and seen == [("anonymous", "eval")]
    assert jobs.broker.queue.empty()  # type: ignore[attr-defined]


class DownBroker(InProcessBroker):
    async def publish(self, job: Job) -> None:
        raise ProviderUnavailable("broker down")


async def test_a_broker_that_refuses_the_job_is_a_503_and_the_job_is_marked_failed(
    tmp_path: Path, served: ServedPipeline
) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    jobs = Jobs(store, DownBroker(), runner=served_runner(served))
    async with serving(create_app(served, jobs=jobs)) as client:
        r = await client.post("/v1/jobs", json={"kind": "batch", "questions": ["q"]})
    assert r.status_code == 503
    with store._connect() as db:
        rows = db.execute("SELECT status, error FROM jobs").fetchall()
    assert rows == [("failed", "not enqueued: ProviderUnavailable")]


def test_store_transitions_are_idempotent(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    job = Job("j1", "batch", {"kind": "batch", "questions": ["q"]}, "red", "k")
    assert store.create(job) and not store.create(job)
    assert store.start("j1") and store.start("j1")  # a redelivery after a worker died
    assert store.finish("j1", {"answers": [1]})
    assert not store.finish("j1", {"answers": [2]}) and not store.fail("j1", "late")
    assert not store.start("j1") and not store.start("unknown")
    view = store.get("j1")
    assert view is not None and view.status == "done" and view.result == {"answers": [1]} and view.attempts == 2
    assert [e for e, _ in store.events("j1")] == ["queued", "started", "started", "done"]
    assert store.job("j1") == job


async def test_a_redelivered_finished_job_is_not_run_again(tmp_path: Path) -> None:
    calls: list[str] = []

    async def ask(question: str) -> Any:
        calls.append(question)
        raise ProviderUnavailable("should not matter")

    store = JobStore(tmp_path / "jobs.sqlite")
    worker = JobWorker(store, JobRunner(ask))
    job = Job("j2", "batch", {"kind": "batch", "questions": ["q"]}, "red", "k")
    await worker.handle(job)  # recorded by the worker: the API never wrote it
    await worker.handle(job)
    view = store.get("j2")
    assert calls == ["q"] and view is not None and view.status == "done"
    assert view.result is not None and "ProviderUnavailable" in view.result["answers"][0]["error"]


def test_broker_urls() -> None:
    assert isinstance(broker_from_url(None), InProcessBroker)
    assert isinstance(broker_from_url("memory://"), InProcessBroker)
    with pytest.raises(ConfigError, match="unknown scheme"):
        broker_from_url("kafka://localhost:9092")


def test_a_worker_without_a_broker_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "worker", str(tmp_path))
    assert_one_line_error(code, err, "--broker")
    code, _, err = run_cli(capsys, "worker", str(tmp_path), "--broker", "memory://")
    assert_one_line_error(code, err, "amqp://")
