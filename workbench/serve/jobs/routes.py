"""`Jobs`, the job service the app is handed, and its routes: `POST /v1/jobs` (202 and an id at
once) and `GET /v1/jobs/{id}`.

The routes sit behind the same `authenticate` dependency as the other `/v1/*` routes; the
caller's team, key id and key limits are recorded on the job. `Jobs.admit` is awaited before a
job is enqueued: `JobQuota.admit` refuses a job over its caller's rate limits or quotas, and the
runner charges each question as it runs (`jobs/quota.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response

from workbench.serve.errors import COMMON_ERRORS, ApiError, ErrorResponse
from workbench.serve.jobs.api import BatchJob, EvalJob, JobAccepted, JobRequest, JobView
from workbench.serve.jobs.broker import Broker, InProcessBroker
from workbench.serve.jobs.callbacks import CallbackPolicy
from workbench.serve.jobs.quota import JobQuota
from workbench.serve.jobs.store import Job, JobStore
from workbench.serve.jobs.worker import JobRunner, JobWorker
from workbench.serve.limits import Limiter
from workbench.serve.principal import Principal, principal_of

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 4

Admit = Callable[[Request, Principal, BatchJob | EvalJob], Awaitable[None]]


class Jobs:
    """The job store, the broker, and (for the in-process broker) the workers inside the server.

    - `runner`: given, the server runs jobs itself (`concurrency` at a time); None, separate
      `python -m workbench worker` processes do (a RabbitMQ broker);
    - `callbacks`: which callback hosts are allowed;
    - `admit(request, principal, body)`: awaited before enqueueing; raise to refuse.
    """

    def __init__(
        self,
        store: JobStore,
        broker: Broker | None = None,
        *,
        runner: JobRunner | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        callbacks: CallbackPolicy | None = None,
        admit: Admit | None = None,
    ) -> None:
        self.store = store
        self.broker: Broker = broker if broker is not None else InProcessBroker()
        self.worker = JobWorker(store, runner) if runner is not None else None
        self.concurrency = concurrency
        self.callbacks = callbacks or CallbackPolicy()
        self.admit = admit
        self._consumer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.broker.connect()
        if self.worker is not None:
            if isinstance(self.broker, InProcessBroker):
                await self._requeue_orphans()
            self._consumer = asyncio.create_task(self.broker.consume(self.worker.handle, self.concurrency))

    async def _requeue_orphans(self) -> None:
        """An in-process queue dies with its server: the jobs a stopped server had queued or
        started (and no live process owns) are queued again. RabbitMQ keeps its own."""
        orphans = await asyncio.to_thread(self.store.claim_orphans, _alive)
        for job in orphans:
            await self.broker.publish(job)
        if orphans:
            log.warning("queued again %d job(s) a stopped server left unfinished", len(orphans))

    async def stop(self) -> None:
        if self._consumer is not None:
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer
        await self.broker.close()

    async def submit(self, body: BatchJob | EvalJob, principal: Principal) -> Job:
        """Record the job, then hand it to the broker; a broker that fails marks it failed."""
        request = body.model_dump(mode="json", exclude={"callback_url"})
        job = Job.of(uuid.uuid4().hex, body.kind, request, principal, body.callback_url)
        await asyncio.to_thread(self.store.create, job)
        try:
            await self.broker.publish(job)
        except BaseException as exc:
            await asyncio.to_thread(self.store.fail, job.id, f"not enqueued: {type(exc).__name__}")
            raise
        return job


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def jobs_router(jobs: Jobs) -> APIRouter:
    router = APIRouter(tags=["jobs"])

    @router.post(
        "/v1/jobs",
        status_code=202,
        response_model=JobAccepted,
        responses=COMMON_ERRORS
        | {
            401: {"model": ErrorResponse, "description": "missing or refused credentials (when auth is on)"},
            402: {"model": ErrorResponse, "description": "the team's daily dollar budget is spent"},
            429: {"model": ErrorResponse, "description": "a rate limit or daily token quota is reached"},
            503: {"model": ErrorResponse, "description": "the broker or the rate limiter is unavailable"},
        },
        summary="Enqueue a batch of questions or an evaluation",
    )
    async def submit(body: JobRequest, request: Request, response: Response) -> JobAccepted:
        """Answers at once with the job id; poll `GET /v1/jobs/{id}` or pass `callback_url`."""
        if body.callback_url is not None and (why := jobs.callbacks.refusal(body.callback_url)):
            raise ApiError(422, why, "invalid_request_error", param="callback_url")
        principal = principal_of(request.state)
        if jobs.admit is not None:
            await jobs.admit(request, principal, body)
        job = await jobs.submit(body, principal)
        url = f"/v1/jobs/{job.id}"
        response.headers["Location"] = url
        return JobAccepted(id=job.id, status="queued", url=url)

    @router.get(
        "/v1/jobs/{job_id}",
        response_model=JobView,
        responses={404: {"model": ErrorResponse, "description": "no such job (or not yours)"}},
        summary="A job's status and, once done, its results",
    )
    async def get(job_id: str, request: Request) -> JobView:
        view = await asyncio.to_thread(jobs.store.get, job_id)
        # Another team's job is as unknown as a missing one: ids are not a way to read others' results.
        if view is None or view.team != principal_of(request.state).team:
            raise ApiError(404, f"no job with id {job_id!r}", "not_found", param="job_id")
        return view

    return router


def bundle_jobs(
    bundle: Any,
    service: Any,
    *,
    broker_url: str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    callback_allow: tuple[str, ...] = (),
    limiter: Limiter | None = None,
) -> Jobs:
    """The jobs of a served bundle: the store in `DIR/var/jobs.sqlite`; with no broker URL the
    server runs the jobs itself, on its own loop, with its session. With a `limiter`, jobs are
    admitted and charged within their caller's limits (`JobQuota`)."""
    from workbench.serve.jobs.broker import broker_from_url

    store = JobStore(bundle.request_log_dir / "jobs.sqlite")
    quota = JobQuota(limiter) if limiter is not None else None
    return Jobs(
        store,
        broker_from_url(broker_url),
        runner=served_runner(service, quota=quota) if broker_url is None else None,
        concurrency=concurrency,
        callbacks=CallbackPolicy(callback_allow),
        admit=quota.admit if quota is not None else None,
    )


def served_runner(service: Any, *, quota: JobQuota | None = None) -> JobRunner:
    """A runner inside the server: questions through the served pipeline on the server's loop
    (as `/v1/ask` runs them), evaluations through the served session (when it has one)."""
    from workbench.core.state import RequestState
    from workbench.serve.jobs.worker import session_runner

    async def ask(question: str) -> RequestState:
        state: RequestState = await service.pipeline.arun(RequestState(query=question))
        return state

    if service.session is None:
        return JobRunner(ask, quota=quota)
    return session_runner(service.session, ask=ask, quota=quota)
