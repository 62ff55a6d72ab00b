"""`RabbitMQBroker`: jobs on a durable RabbitMQ queue, through aio-pika.

Why aio-pika rather than FastStream, taskiq or Celery: at-least-once delivery here rests on
one thing, acknowledging a message only after its result is in the job store, and aio-pika
gives that control per message (`message.ack()` when we say so, `prefetch_count` = the worker's
concurrency, unacked messages redelivered when a worker's connection drops). FastStream is
built on aio-pika and would add a framework (its own app, routing, serialisation) for what is
one queue and one message type; Celery brings its own worker model and result backend, which
would duplicate the job store and its idempotence rules. aio-pika is asyncio-native like the
server, well kept, and has no dependencies beyond aiormq.

What makes jobs survive: the queue is declared `durable`, messages are `PERSISTENT`, and
`publish` waits for the broker's confirm, so a 202 means RabbitMQ has the job on disk. A
restarted node keeps them; `connect_robust` reconnects the API and the workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from workbench.core.errors import ConfigError, ProviderUnavailable
from workbench.serve.jobs.store import Handler, Job

log = logging.getLogger(__name__)

REQUEUE_DELAY_S = 1.0  # before handing back a job whose handler failed, so a fault does not spin


def _aio_pika() -> Any:
    try:
        import aio_pika
    except ImportError as exc:
        raise ConfigError("--broker amqp://... needs aio-pika: pip install 'workbench[gateway]'") from exc
    return aio_pika


class RabbitMQBroker:
    """A durable queue named `queue` on the broker at `url`."""

    def __init__(self, url: str, *, queue: str = "workbench.jobs") -> None:
        self.url = url
        self.queue_name = queue
        self._connection: Any = None
        self._channel: Any = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def connect(self) -> None:
        if self._connection is not None:
            return
        aio_pika = _aio_pika()
        try:
            self._connection = await aio_pika.connect_robust(self.url, timeout=10)
        except Exception as exc:
            raise ProviderUnavailable(f"RabbitMQ at {_safe(self.url)}: {type(exc).__name__}") from exc
        self._channel = await self._connection.channel(publisher_confirms=True)
        await self._channel.declare_queue(self.queue_name, durable=True)

    async def publish(self, job: Job) -> None:
        """Returns once the broker has confirmed the persistent message."""
        aio_pika = _aio_pika()
        await self.connect()
        message = aio_pika.Message(
            job.message(),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=job.id,
            content_type="application/json",
        )
        try:
            await self._channel.default_exchange.publish(message, routing_key=self.queue_name, timeout=10)
        except Exception as exc:
            raise ProviderUnavailable(f"RabbitMQ refused job {job.id}: {type(exc).__name__}: {exc}") from exc

    async def consume(self, handler: Handler, concurrency: int) -> None:
        await self.connect()
        # At most `concurrency` unacked messages in this worker: the rest wait in the queue for
        # whichever worker is free.
        await self._channel.set_qos(prefetch_count=concurrency)
        queue = await self._channel.declare_queue(self.queue_name, durable=True)

        async def on_message(message: Any) -> None:
            task = asyncio.create_task(self._handle(handler, message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        tag = await queue.consume(on_message, no_ack=False)
        try:
            await asyncio.Future()  # until cancelled
        finally:
            with contextlib.suppress(Exception):
                await queue.cancel(tag)

    async def _handle(self, handler: Handler, message: Any) -> None:
        try:
            job = Job.from_message(message.body)
        except Exception:  # not a job: no redelivery would ever make it one
            log.exception("dropping a malformed message %r", message.message_id)
            await message.reject(requeue=False)
            return
        try:
            await handler(job)
        except asyncio.CancelledError:
            # Shutting down mid-job: hand the job back for another worker.
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
            raise
        except Exception:
            log.exception("job %s: the handler failed; requeued", job.id)
            await asyncio.sleep(REQUEUE_DELAY_S)
            await message.nack(requeue=True)
            return
        # Only now, with the result stored, may RabbitMQ forget the message.
        await message.ack()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
        self._connection = self._channel = None


def _safe(url: str) -> str:
    """The URL without its password (credentials never reach logs or errors)."""
    scheme, _, rest = url.partition("://")
    _, at, host = rest.rpartition("@")
    return f"{scheme}://{host}" if at else url
