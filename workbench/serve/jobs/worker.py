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

from workbench.core.errors import QuotaExceeded, WorkbenchError
from workbench.core.state import RequestState
from workbench.serve.api import source
from workbench.serve.jobs.callbacks import post_callback
from workbench.serve.jobs.quota import JobQuota
from workbench.serve.jobs.store import Job, JobStore
from workbench.serve.principal import Principal

log = logging.getLogger(__name__)

Ask = Callable[[str], Awaitable[RequestState]]
Evaluate = Callable[[str, "int | None"], Awaitable[dict[str, Any]]]


def _finite(value: Any) -> Any:
    """JSON has no NaN: a metric that could not be computed is null."""
    return value if not isinstance(value, float) or math.isfinite(value) else None


class JobRunner:
    """Runs a job's request: `ask(question)` for a batch, `evaluate(dataset, limit)` for an eval.
    With a `quota`, the job's questions and usage count against its caller's limits."""

    def __init__(self, ask: Ask, evaluate: Evaluate | None = None, *, quota: JobQuota | None = None) -> None:
        self.ask = ask
        self.evaluate = evaluate
        self.quota = quota

    async def run(self, job: Job) -> dict[str, Any]:
        if job.kind == "batch":
            return {"answers": await self._batch(job.principal(), job.request["questions"])}
        if job.kind == "eval":
            if self.evaluate is None:
                raise WorkbenchError("this server cannot run evaluations")
            result = await self.evaluate(job.request["dataset"], job.request.get("limit"))
            if self.quota is not None:
                usage = result.get("usage") or {}
                await self.quota.charge(job.principal(), int(usage.get("tokens", 0)), float(usage.get("cost", 0.0)))
            return result
        raise WorkbenchError(f"unknown job kind {job.kind!r}")

    async def _batch(self, principal: Principal, questions: list[str]) -> list[dict[str, Any]]:
        answers: list[dict[str, Any]] = []
        stopped: str | None = None
        for question in questions:
            if stopped is not None:
                answers.append(_failed(question, f"not run: {stopped}"))
                continue
            try:
                answers.append(await self._answer(principal, question))
            except QuotaExceeded as exc:  # the caller's budget is spent: the rest would be refused too
                stopped = f"{type(exc).__name__}: {exc}"
                answers.append(_failed(question, stopped))
        return answers

    async def _answer(self, principal: Principal, question: str) -> dict[str, Any]:
        from workbench.guardrails import raise_if_blocked

        try:
            if self.quota is not None:
                state = await self.quota.ask(principal, question, self.ask)
            else:
                state = await self.ask(question)
            raise_if_blocked(state)
        except QuotaExceeded:
            raise
        except WorkbenchError as exc:  # one question's error, not the job's
            return _failed(question, f"{type(exc).__name__}: {exc}")
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


def _failed(question: str, error: str) -> dict[str, Any]:
    return {"question": question, "answer": None, "error": error}


def session_runner(session: Any, *, ask: Ask | None = None, quota: JobQuota | None = None) -> JobRunner:
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
            "usage": _usage(result.frame),
        }

    return JobRunner(ask or ask_in_session, evaluate, quota=quota)


def _usage(frame: Any) -> dict[str, Any]:
    """Tokens and dollars the evaluation's answers report, which its job is charged."""
    columns = [c for c in ("tokens_in", "tokens_out") if c in frame]
    tokens = int(frame[columns].fillna(0).to_numpy().sum()) if columns else 0
    cost = float(frame["cost"].fillna(0).sum()) if "cost" in frame else 0.0
    return {"tokens": tokens, "cost": cost}


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
