"""Prometheus metrics of one app, in its own `CollectorRegistry` (no process-wide state).

With several uvicorn workers the command sets `PROMETHEUS_MULTIPROC_DIR` before any worker
imports prometheus-client; every worker then writes its values to files there and `/metrics`
aggregates them across workers (`MultiProcessCollector`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from workbench.core.state import RequestState

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR")


class ServeMetrics:
    """Request, stage, token, cost, guard, fallback, breaker and limiter metrics of one app."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "workbench_requests", "HTTP requests served", ["endpoint", "method", "status"], registry=r
        )
        self.errors = Counter(
            "workbench_request_errors", "requests answered with an error", ["endpoint", "status"], registry=r
        )
        self.latency = Histogram(
            "workbench_request_seconds", "request latency", ["endpoint"], buckets=_LATENCY, registry=r
        )
        self.stage = Histogram(
            "workbench_stage_seconds", "pipeline stage latency", ["stage", "cached"], buckets=_LATENCY, registry=r
        )
        self.ttft = Histogram(
            "workbench_time_to_first_token_seconds", "time to the first streamed text", buckets=_LATENCY, registry=r
        )
        self.model_ttft = Histogram(
            "workbench_model_time_to_first_token_seconds",
            "the answering model's own time to its first piece, in streams",
            buckets=_LATENCY,
            registry=r,
        )
        self.tokens = Counter("workbench_tokens", "tokens used per model endpoint", ["model", "direction"], registry=r)
        self.cost = Counter("workbench_cost", "cost per model endpoint", ["model"], registry=r)
        self.guard = Counter(
            "workbench_guard_triggers", "guardrail checks that triggered", ["stage", "check", "action"], registry=r
        )
        self.fallbacks = Counter(
            "workbench_fallbacks", "answers from a fallback endpoint", ["endpoint", "fallback_from"], registry=r
        )
        self.breaker = Gauge(
            "workbench_breaker_state",
            "circuit breaker state per endpoint: 0 closed, 1 half open, 2 open",
            ["endpoint"],
            registry=r,
            multiprocess_mode="max",
        )

        self.limiter_degraded = Gauge(
            "workbench_limiter_degraded",
            "1 while the rate limiter's shared store (Redis) is unreachable, else 0",
            registry=r,
            multiprocess_mode="max",
        )

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, method, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def observe_error(self, endpoint: str, status: str) -> None:
        self.errors.labels(endpoint, status).inc()

    def observe_state(self, state: RequestState) -> None:
        for t in state.timings:
            self.stage.labels(t.stage, "true" if t.cached else "false").observe(t.seconds)
        for call in state.calls:
            self.tokens.labels(call.endpoint, "in").inc(call.tokens_in)
            self.tokens.labels(call.endpoint, "out").inc(call.tokens_out)
            self.cost.labels(call.endpoint).inc(call.cost)
            if call.fallback_from:
                self.fallbacks.labels(call.endpoint, call.fallback_from).inc()
        for v in state.verdicts:
            if v.triggered:
                self.guard.labels(v.stage, v.check, v.action).inc()

    def observe_breakers(self, breakers: Iterable[Any]) -> None:
        for b in breakers:
            self.breaker.labels(b.endpoint).set(BREAKER_STATES.get(b.state, 0))

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type; across workers in multiprocess mode."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        folder = multiprocess_dir()
        if folder is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=folder)
        return generate_latest(registry), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int) -> None:
    if multiprocess_dir() is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
