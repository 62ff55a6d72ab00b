"""`RayExecutor`: answer a sweep's items on a pool of Ray actors (`--executor ray`).

Each actor is one process with its own `SharedResources`: the stage cache (SQLite, WAL) and the
DuckDB indexes live on disk and are shared by every actor, while models and loaded indexes are
per actor. A variant's items go to the same actor (its "home"), so its model and index stay
warm; an idle actor takes over a longer queue's items only when there is a run of them left.

The driver alone calls `should_start()` (the budget) and `on_row()` (the journal), as rows
arrive, so the journal does not depend on where the work ran.

The cluster is `RAY_ADDRESS` (or `address=`) if set, e.g. a head started with `ray start
--head`; otherwise a local one is started on loopback, without dashboard or usage stats, and
shut down by `close()`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import socket
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from workbench.core.errors import MissingDependency, WorkbenchError
from workbench.sweeps.executors import Job, OnRow
from workbench.sweeps.work import WorkItem

log = logging.getLogger(__name__)

# Workers never download anything, and never draw progress bars into the driver's output.
_WORKER_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "RAY_USAGE_STATS_ENABLED": "0",
}
# An idle actor takes items of another actor's variant only if at least this many are queued:
# loading a second copy of a model is worth it for a run of items, not for the last one or two.
_STEAL_MIN = 4


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


class _Worker:
    """One Ray actor's state: the sweep's resources in this process, and its metrics.

    Every call into the resources runs on their event loop thread (warm-up included), so the
    actor's threads never build an index or a pipeline side by side.
    """

    def __init__(self, job: Job) -> None:
        self.job = job
        self.error: BaseException | None = None
        self._warm: set[str] = set()
        self._lock = threading.Lock()
        try:
            from workbench.core.cache import SqliteStageCache
            from workbench.evaluation.metrics import build_metrics
            from workbench.sweeps.resources import SharedResources

            first = next(iter(job.configs.values()))
            self.resources = SharedResources(job.root, cache=SqliteStageCache(job.root / first.store.cache))
            embedder = self.resources.embedder(first)
            self.metrics = build_metrics(job.metrics, embedder=embedder, k=job.k)
        except Exception as exc:  # re-raised by `answer`, where the driver sees it as itself
            self.error = exc

    def answer(self, item: WorkItem) -> dict[str, Any]:
        from workbench.sweeps.work import answer_item

        if self.error is not None:
            raise self.error
        config = self.job.configs[item.variant]
        documents = self.job.dataset.documents
        with self._lock:
            if item.variant not in self._warm:
                self.resources.loop.run(self._warm_up(item.variant))
                self._warm.add(item.variant)
        return self.resources.loop.run(answer_item(item, config, documents, self.resources, self.metrics))

    async def _warm_up(self, variant: str) -> None:
        self.resources.warm_up(self.job.configs[variant], self.job.dataset.documents)


def _job_key(job: Job) -> tuple[Any, ...]:
    """What an actor's state depends on: a new key means new actors."""
    configs = tuple((name, config.model_dump_json()) for name, config in sorted(job.configs.items()))
    return (str(job.root), job.dataset.content_hash, configs, tuple(job.metrics), job.k, job.judge, job.concurrency)


class RayExecutor:
    """Answers sweep items on Ray actors and records each row in the driver as it arrives.

    `address`: the cluster (default `RAY_ADDRESS`; unset: start a local one with `num_cpus`,
    default all). `actors`: pool size (default one per CPU of the cluster, at most one per
    variant); each actor reserves `cpus_per_actor`. At most `max(concurrency, actors)` items
    are in flight at once, spread evenly over the actors.
    """

    def __init__(
        self,
        *,
        address: str | None = None,
        num_cpus: int | None = None,
        actors: int | None = None,
        cpus_per_actor: float = 1.0,
    ) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.actors = actors
        self.cpus_per_actor = cpus_per_actor
        self._ray: Any = None
        self._owns_connection = False
        self._pool: list[Any] = []
        self._pool_key: tuple[Any, ...] | None = None
        self._per_actor = 1
        self._home: dict[str, int] = {}

    # --- the cluster -----------------------------------------------------------------------
    def _connect(self) -> Any:
        if self._ray is not None:
            return self._ray
        address = self.address or os.environ.get("RAY_ADDRESS") or None
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if (address is None or _loopback(address)) and "ray" not in sys.modules:
            # Ray replaces a loopback address (ours, or the one we connect to) with the
            # machine's outward one unless "clusters" are off; off, a local head and its workers
            # listen on 127.0.0.1 only, and a head started that way is reachable at 127.0.0.1.
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        if address is not None:
            _reachable(address)
        try:
            import ray
        except ImportError as exc:
            raise MissingDependency("ray", "ray") from exc
        if not ray.is_initialized():
            runtime_env = {"env_vars": self._worker_env()}
            try:
                if address is not None:
                    ray.init(address=address, runtime_env=runtime_env, logging_level=logging.WARNING)
                else:
                    ray.init(
                        num_cpus=self.num_cpus or os.cpu_count() or 1,
                        include_dashboard=False,
                        runtime_env=runtime_env,
                        logging_level=logging.WARNING,
                    )
            except Exception as exc:
                where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
                raise WorkbenchError(f"cannot connect to {where}: {_first_line(exc)}") from exc
            self._owns_connection = True
        self._ray = ray
        return ray

    @staticmethod
    def _worker_env() -> dict[str, str]:
        # Workers run the driver's python; the package folder on PYTHONPATH makes them import
        # this very checkout even where the package is not installed in that environment.
        package_parent = str(Path(__file__).resolve().parents[2])
        paths = [package_parent, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        return {**_WORKER_ENV, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}

    def _actors_for(self, job: Job) -> list[Any]:
        """The pool for `job`, built on first use and kept across runs of the same job (rungs
        of successive halving, the confirm split) so loaded models stay loaded."""
        key = _job_key(job)
        if self._pool and key == self._pool_key:
            return self._pool
        self._kill_pool()
        ray = self._ray
        cpus = int(ray.cluster_resources().get("CPU", 1) // max(self.cpus_per_actor, 1e-9)) or 1
        size = max(1, min(self.actors or cpus, len(job.configs)))
        total = max(job.concurrency, size)
        self._per_actor = math.ceil(total / size)
        worker = ray.remote(_Worker).options(num_cpus=self.cpus_per_actor, max_concurrency=self._per_actor)
        shared = ray.put(job)
        self._pool = [worker.remote(shared) for _ in range(size)]
        self._pool_key = key
        self._home = {}
        log.info("ray: %d actors, %d items in flight each", size, self._per_actor)
        return self._pool

    def _kill_pool(self) -> None:
        if self._ray is not None:
            for actor in self._pool:
                with contextlib.suppress(Exception):
                    self._ray.kill(actor)
        self._pool, self._pool_key, self._home = [], None, {}

    # --- routing ---------------------------------------------------------------------------
    def _route(self, items: Sequence[WorkItem], size: int) -> list[deque[tuple[int, WorkItem]]]:
        """Per-actor queues of (position, item): each variant lives on one actor, and the
        actors get as even a share of variants as they can."""
        load = [0] * size
        for actor in self._home.values():
            load[actor] += 1
        queues: list[deque[tuple[int, WorkItem]]] = [deque() for _ in range(size)]
        for position, item in enumerate(items):
            if item.variant not in self._home:
                actor = min(range(size), key=lambda a: (load[a], a))
                self._home[item.variant] = actor
                load[actor] += 1
            queues[self._home[item.variant]].append((position, item))
        return queues

    def _next(self, queues: list[deque[tuple[int, WorkItem]]], busy: list[int]) -> tuple[int, int, bool] | None:
        """Where the next item comes from, as (actor, queue, from the end): the earliest queued
        item whose actor has room; else, for an idle actor, the end of the longest queue."""
        free = [a for a in range(len(queues)) if busy[a] < self._per_actor]
        ready = [a for a in free if queues[a]]
        if ready:
            actor = min(ready, key=lambda a: queues[a][0][0])
            return actor, actor, False
        idle = [a for a in free if busy[a] == 0]
        longest = max(range(len(queues)), key=lambda a: len(queues[a]))
        if idle and len(queues[longest]) >= _STEAL_MIN:
            return idle[0], longest, True
        return None

    # --- the executor ----------------------------------------------------------------------
    def run(self, job: Job, items: Sequence[WorkItem], on_row: OnRow, should_start: Callable[[], bool]) -> None:
        """Answer `items`, calling `should_start()` before each one starts (False: start no
        more) and `on_row(row)` here, in the driver, as each finishes. A failure inside a
        worker (not a failed question, which is a row) is raised here as one `WorkbenchError`,
        after the items in flight have finished and been recorded."""
        if not items:
            return
        ray = self._connect()
        job = dataclasses.replace(job, root=Path(job.root).resolve())  # actors have their own cwd
        actors = self._actors_for(job)
        queues = self._route(items, len(actors))
        busy = [0] * len(actors)
        pending: dict[Any, tuple[int, WorkItem]] = {}
        failure: WorkbenchError | None = None
        stopped = False
        try:
            while True:
                while not stopped and failure is None:
                    chosen = self._next(queues, busy)
                    if chosen is None:
                        break
                    if not should_start():
                        stopped = True
                        break
                    actor, source, from_end = chosen
                    _, item = queues[source].pop() if from_end else queues[source].popleft()
                    pending[actors[actor].answer.remote(item)] = (actor, item)
                    busy[actor] += 1
                if not pending:
                    break
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    actor, item = pending.pop(ref)
                    busy[actor] -= 1
                    try:
                        row = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        failure = failure or _worker_failure(exc, item)
                        continue
                    on_row(row)
        except BaseException:
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref)
            raise
        if failure is not None:
            # Actors that failed may hold half-built state: the next run starts fresh ones.
            self._kill_pool()
            raise failure

    def close(self) -> None:
        """Kill the actors, and disconnect (stopping the local cluster) if this executor
        connected; a connection made by the caller is left open."""
        self._kill_pool()
        if self._owns_connection and self._ray is not None:
            self._ray.shutdown()
        self._owns_connection = False
        self._ray = None


def _host_port(address: str) -> tuple[str, int] | None:
    host, _, port = address.removeprefix("ray://").rpartition(":")
    return (host.strip("[]"), int(port)) if host and port.isdigit() else None


def _loopback(address: str) -> bool:
    parsed = _host_port(address)
    return parsed is not None and (parsed[0] in {"localhost", "::1"} or parsed[0].startswith("127."))


def _reachable(address: str) -> None:
    """Fail in seconds on a wrong address: Ray itself retries an unreachable one for minutes."""
    parsed = _host_port(address)
    if parsed is None:  # "auto", "local": Ray finds the cluster itself
        return
    try:
        socket.create_connection(parsed, timeout=5).close()
    except OSError as exc:
        raise WorkbenchError(f"cannot reach the Ray cluster at {address}: {_first_line(exc)}") from exc


def _worker_failure(exc: BaseException, item: WorkItem) -> WorkbenchError:
    """One line for a failure inside a worker: the worker's own `WorkbenchError` if it raised
    one, else what it raised, named, without Ray's traceback."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, WorkbenchError):
        return cause
    where = f"{item.variant} on question {item.question.id}"
    if cause is not None:
        return WorkbenchError(f"ray worker failed answering {where}: {_first_line(cause)}")
    return WorkbenchError(f"ray worker failed answering {where}: {_first_line(exc)}")


__all__ = ["RayExecutor"]
