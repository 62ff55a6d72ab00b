"""Async jobs: `POST /v1/jobs` enqueues a batch of questions or an evaluation, workers run it,
`GET /v1/jobs/{id}` shows its status and results.

- `store.py`: `JobStore`, every job by id in SQLite, idempotent transitions (at-least-once
  delivery, each result recorded once);
- `broker.py`: the `Broker` protocol and the in-process broker; `rabbitmq.py`: RabbitMQ
  through aio-pika (durable queue, persistent messages, ack after the result is stored);
- `worker.py`: `JobRunner` (runs one job) and `JobWorker` (takes a delivery through the store);
- `routes.py`: `Jobs` (what `create_app(jobs=...)` is handed) and the routes;
- `callbacks.py`: which callback hosts are allowed.
"""

from __future__ import annotations

from workbench.serve.jobs.broker import Broker, InProcessBroker, broker_from_url
from workbench.serve.jobs.callbacks import CallbackPolicy
from workbench.serve.jobs.routes import Jobs, bundle_jobs, jobs_router, served_runner
from workbench.serve.jobs.store import Job, JobStore
from workbench.serve.jobs.worker import JobRunner, JobWorker, session_runner

__all__ = [
    "Broker",
    "CallbackPolicy",
    "InProcessBroker",
    "Job",
    "JobRunner",
    "JobStore",
    "JobWorker",
    "Jobs",
    "broker_from_url",
    "bundle_jobs",
    "jobs_router",
    "served_runner",
    "session_runner",
]
