"""`JobRunner` runs one job; `JobWorker` takes a delivered job through the store: start it
unless it finished already, run it, record the outcome once, call back.

The same worker runs inside `serve` (in-process broker) and in `python -m workbench worker`
processes (RabbitMQ); only how a question is asked differs (`ask`), which keeps each process's
model clients on the event loop that made them.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

from workbench.core.errors import WorkbenchError
from workbench.core.state import RequestState
from workbench.serve.api import source
from workbench.serve.jobs.callbacks import post_callback
from workbench.serve.jobs.store import Job, JobStore

log = logging.getLogger(__name__)

Ask = Callable[[str], Awaitable[RequestState]]
Evaluate = Callable[[str, "int | None"], Awaitable[dict[str, Any]]]


def _finite(value: Any) -> Any:
    """JSON has no NaN: a metric that could not be computed is null."""
    return value if not isinstance(value, float) or math.isfinite(value) else None


class JobRunner:
    """Runs a job's request: `ask(question)` for a batch, `evaluate(dataset, limit)` for an eval."""

    def __init__(self, ask: Ask, evaluate: Evaluate | None = None) -> None:
        self.ask = ask
        self.evaluate = evaluate

    async def run(self, job: Job) -> dict[str, Any]:
        if job.kind == "batch":
            return {"answers": [await self._answer(q) for q in job.request["questions"]]}
        if job.kind == "eval":
            if self.evaluate is None:
                raise WorkbenchError("this server cannot run evaluations")
            return await self.evaluate(job.request["dataset"], job.request.get("limit"))
        raise WorkbenchError(f"unknown job kind {job.kind!r}")

    async def _answer(self, question: str) -> dict[str, Any]:
        from workbench.guardrails import raise_if_blocked

        try:
            state = await self.ask(question)
            raise_if_blocked(state)
        except WorkbenchError as exc:  # one question's error, not the job's
            return {"question": question, "answer": None, "error": f"{type(exc).__name__}: {exc}"}
        return {
            "question": question,
            "answer": state.answer or "",
            "abstained": state.abstained,
            "route": state.route,
            "sources": [source(c).model_dump(mode="json") for c in state.chunks],
            "tokens_in": state.tokens_in,
            "tokens_out": state.tokens_out,
            "cost": state.cost,
            "error": None,
        }


def session_runner(session: Any, *, ask: Ask | None = None) -> JobRunner:
    """A runner over a `Workbench` session: questions through its pipeline (on the session's
    own loop unless `ask` is given), evaluations with `session.run(dataset, log=False)`."""

    async def ask_in_session(question: str) -> RequestState:
        state: RequestState = await asyncio.to_thread(session.ask, question, raise_on_block=False)
        return state

    async def evaluate(dataset: str, limit: int | None) -> dict[str, Any]:
        result = await asyncio.to_thread(session.run, dataset, limit=limit, log=False)
        return {
            "dataset": dataset,
            "questions": len(result.frame),
            "metrics": {k: _finite(v) for k, v in result.metrics.items()},
        }

    return JobRunner(ask or ask_in_session, evaluate)


class JobWorker:
    """Handles delivered jobs. Safe to call twice with one job (redelivery): a finished job is
    left as it is, and a result is recorded once."""

    def __init__(self, store: JobStore, runner: JobRunner) -> None:
        self.store = store
        self.runner = runner

    async def handle(self, job: Job) -> None:
        # A job whose API process died before recording it is recorded here (INSERT OR IGNORE).
        await asyncio.to_thread(self.store.create, job)
        if not await asyncio.to_thread(self.store.start, job.id):
            log.info("job %s finished already; not run again", job.id)
            return
        try:
            result = await self.runner.run(job)
        except Exception as exc:  # the job's failure, recorded; not the worker's
            log.warning("job %s failed: %s: %s", job.id, type(exc).__name__, exc)
            won = await asyncio.to_thread(self.store.fail, job.id, f"{type(exc).__name__}: {exc}")
        else:
            won = await asyncio.to_thread(self.store.finish, job.id, result)
        if won and job.callback_url:
            view = await asyncio.to_thread(self.store.get, job.id)
            if view is not None:
                await post_callback(job.callback_url, view.model_dump(mode="json"))
