"""`python -m workbench worker DIR --broker amqp://...`: run the jobs a `serve DIR --broker ...`
enqueues, in a process of its own, so workers scale apart from the API.

The worker verifies the bundle as `serve` does, answers with the bundle's session, and shares
the job store (`DIR/var/jobs.sqlite`) with the API on the same machine. It takes at most
`--concurrency` jobs at a time (the RabbitMQ prefetch) and acknowledges each only once its
result is stored: a worker killed mid-job leaves the job to be redelivered to another. With
the API's `--limits` and `--redis`, each job's questions are charged to the team that sent it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

BROKER_ENV = "WORKBENCH_BROKER"

log = logging.getLogger(__name__)


def add_parser(sub: Any) -> None:
    worker = sub.add_parser("worker", help="run async jobs (POST /v1/jobs) from a message broker")
    worker.add_argument("bundle", help="the bundle folder the API serves")
    worker.add_argument("--broker", help=f"the broker URL, amqp://... (default: ${BROKER_ENV})")
    worker.add_argument("--concurrency", type=int, default=4, help="jobs run at a time (default 4)")
    worker.add_argument("--root", default=".", help="base of the bundle config's relative paths and datasets")
    worker.add_argument("--index", help="the retrieval index file, for a slim bundle")
    worker.add_argument("--queue", default="workbench.jobs", help="the queue name (default workbench.jobs)")
    worker.add_argument("--limits", metavar="FILE", help="the team limits file `serve --limits` uses")
    worker.add_argument("--redis", metavar="URL", help="the Redis `serve --redis` counts the limits in")
    worker.add_argument(
        "--limiter-failure", choices=["closed", "open"], default="closed", help="when Redis is unreachable"
    )
    worker.set_defaults(func=cmd_worker)


async def run_worker(
    bundle: Any,
    broker_url: str,
    *,
    concurrency: int = 4,
    queue: str = "workbench.jobs",
    models: Any = None,
    limiter: Any = None,
) -> None:
    """Consume jobs for `bundle` until SIGTERM/SIGINT (or cancellation). `models` injects chat
    models by endpoint name (tests: a slow model); `limiter` charges each job's questions to
    its caller (the API's limits, shared through Redis)."""
    from workbench.serve.jobs import JobStore, JobWorker, broker_from_url, session_runner
    from workbench.serve.jobs.quota import JobQuota

    store = JobStore(bundle.request_log_dir / "jobs.sqlite")
    session = bundle.session(models=models)
    broker = broker_from_url(broker_url, queue=queue)
    quota = None
    if limiter is not None:
        from workbench.serve.service import count_tokens_with

        endpoint = session.config.generation.model
        limiter.use_tokenizer(lambda text: count_tokens_with(session.pool, endpoint, text))
        quota = JobQuota(limiter)
    worker = JobWorker(store, session_runner(session, quota=quota))
    loop = asyncio.get_running_loop()
    consumer = asyncio.create_task(broker.consume(worker.handle, concurrency))
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, consumer.cancel)
    try:
        await consumer
    except asyncio.CancelledError:
        pass
    finally:
        await broker.close()
        if limiter is not None:
            await limiter.aclose()
        await asyncio.to_thread(session.close)


def cmd_worker(args: argparse.Namespace) -> int:
    from workbench.bundle import Bundle
    from workbench.core.errors import ConfigError

    url = args.broker or os.environ.get(BROKER_ENV)
    if not url:
        raise ConfigError(f"a worker needs --broker amqp://... (or ${BROKER_ENV}); in-process jobs run inside serve")
    if not url.startswith(("amqp://", "amqps://")):
        raise ConfigError("--broker: a separate worker needs a shared broker, amqp:// or amqps://")
    if args.concurrency < 1:
        raise ConfigError(f"--concurrency must be 1 or more, not {args.concurrency}")
    from workbench.serve.limits import limiter_from

    limiter = limiter_from(args.limits, args.redis, args.limiter_failure) if args.limits or args.redis else None
    if args.limits and not args.redis:
        print(
            "warning: --limits without --redis counts this worker's jobs alone, apart from the API's and "
            "other workers' requests; pass the --redis URL serve uses",
            file=sys.stderr,
        )
    bundle = Bundle.open(args.bundle, verify=True, root=Path(args.root).resolve(), index=args.index)
    for line in bundle.environment_drift():
        print(f"warning: environment differs from the bundle's: {line}", file=sys.stderr)
    bundle.check_models()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(
        f"worker for {bundle.config.name} (bundle {bundle.digest[:12]}): {args.concurrency} job(s) at a time",
        flush=True,
    )
    asyncio.run(run_worker(bundle, url, concurrency=args.concurrency, queue=args.queue, limiter=limiter))
    return 0
