"""Brokers carry job messages from the API to the workers: the `Broker` protocol, the in-process
one (the default), and `broker_from_url` which picks one from `--broker`.

The in-process broker is an `asyncio.Queue` inside the serve process, and its workers are tasks
of that process: nothing to run besides `serve`, nothing survives a restart (the job store
does: a job left `queued` or `running` by a stopped server stays so). With `--broker amqp://...`
jobs go through RabbitMQ (`rabbitmq.py`) to `python -m workbench worker` processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from workbench.core.errors import ConfigError
from workbench.serve.jobs.store import Handler, Job

log = logging.getLogger(__name__)


class Broker(Protocol):
    """Publishes jobs and delivers them to a handler. A delivery is acknowledged only once the
    handler returns: a handler that raises, or a process that dies, gets the job redelivered
    (by brokers that can: RabbitMQ)."""

    async def connect(self) -> None: ...

    async def publish(self, job: Job) -> None: ...

    async def consume(self, handler: Handler, concurrency: int) -> None:
        """Deliver jobs to `handler`, at most `concurrency` at a time, until cancelled."""
        ...

    async def close(self) -> None: ...


class InProcessBroker:
    """An asyncio queue: the API and its workers in one process and one event loop."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Job] | None = None

    @property
    def queue(self) -> asyncio.Queue[Job]:
        if self._queue is None:  # made on first use, inside the loop that serves
            self._queue = asyncio.Queue()
        return self._queue

    async def connect(self) -> None:
        self.queue  # noqa: B018 (bind the queue to the running loop now)

    async def publish(self, job: Job) -> None:
        self.queue.put_nowait(job)

    async def consume(self, handler: Handler, concurrency: int) -> None:
        async def work() -> None:
            while True:
                job = await self.queue.get()
                try:
                    await handler(job)
                except Exception:  # one job's failure must not stop the worker task
                    log.exception("job %s: the handler failed", job.id)
                finally:
                    self.queue.task_done()

        tasks = [asyncio.create_task(work(), name=f"job-worker-{i}") for i in range(concurrency)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        return None


def broker_from_url(url: str | None, *, queue: str = "workbench.jobs") -> Broker:
    """The in-process broker for None or `memory://`, RabbitMQ for `amqp://` / `amqps://`."""
    if url is None or url == "memory://":
        return InProcessBroker()
    if url.startswith(("amqp://", "amqps://")):
        from workbench.serve.jobs.rabbitmq import RabbitMQBroker

        return RabbitMQBroker(url, queue=queue)
    raise ConfigError(f"--broker {url.split('://')[0]}://...: unknown scheme; use amqp://, amqps:// or memory://")
