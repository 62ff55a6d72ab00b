"""Model selection policies: given measured figures per candidate, pick one model per request.

Each policy is built once per route from the route's `SelectionConfig` and the candidates'
figures, checks there that the figures it needs are present (a `ConfigError` naming the route
and what is missing), then `choose(features)` returns a `ModelChoice`: which model and why.
`complexity` reads the request's features; the others decide from the figures alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from workbench.core.errors import ConfigError
from workbench.core.registry import Registry
from workbench.core.schema import SelectionConfig
from workbench.core.state import ModelChoice
from workbench.routing.complexity import complexity_score

POLICIES: dict[str, str] = {
    "fixed": "workbench.routing.policies:FixedPolicy",
    "cheapest_within": "workbench.routing.policies:CheapestWithinPolicy",
    "latency_budget": "workbench.routing.policies:LatencyBudgetPolicy",
    "complexity": "workbench.routing.policies:ComplexityPolicy",
}


def policy_registry(extra: dict[str, str | type] | None = None) -> Registry:
    """A fresh registry of selection policies; pass user policy classes in `extra`."""
    return Registry("selection policy", {**POLICIES, **(extra or {})})


@dataclass(frozen=True)
class Candidate:
    """A candidate model with the figures resolved for one route."""

    model: str
    cost_per_1k: float
    p95_ms: float | None
    quality: float | None


class SelectionPolicy:
    """Base: subclasses set `name` and implement `choose`."""

    name: ClassVar[str] = "policy"

    def __init__(self, config: SelectionConfig, route: str, candidates: list[Candidate]) -> None:
        self.config = config
        self.route = route
        self.candidates = candidates

    def _need(self, what: str, have: list[Candidate]) -> list[Candidate]:
        if not have:
            raise ConfigError(
                f"routing.routes.{self.route}.selection: policy {self.name!r} needs {what} for at least one of "
                f"{', '.join(c.model for c in self.candidates)} (in the model card or 'figures')"
            )
        return have

    def _choice(self, model: str, reason: str, complexity: float | None = None) -> ModelChoice:
        return ModelChoice(model=model, policy=self.name, reason=reason, complexity=complexity)

    def choose(self, features: Mapping[str, float]) -> ModelChoice:
        raise NotImplementedError


class FixedPolicy(SelectionPolicy):
    """Always the first candidate: today's one-model-per-route behaviour, made explicit."""

    name = "fixed"

    def choose(self, features: Mapping[str, float]) -> ModelChoice:
        return self._choice(self.candidates[0].model, "fixed: the first candidate")


def _quality_text(c: Candidate) -> str:
    quality = "unmeasured" if c.quality is None else f"{c.quality:.3f}"
    return f"quality {quality}, cost {c.cost_per_1k:g}/1k"


class CheapestWithinPolicy(SelectionPolicy):
    """The cheapest candidate whose measured quality on this route is within `quality_delta` of
    the best candidate's (ties: the better one, then the earlier one)."""

    name = "cheapest_within"

    def __init__(self, config: SelectionConfig, route: str, candidates: list[Candidate]) -> None:
        super().__init__(config, route, candidates)
        rated = self._need(f"quality for route {route!r}", [c for c in candidates if c.quality is not None])
        best = max(rated, key=lambda c: c.quality or 0.0)
        floor = (best.quality or 0.0) - config.quality_delta
        within = [c for c in rated if (c.quality or 0.0) >= floor]
        pick = min(within, key=lambda c: (c.cost_per_1k, -(c.quality or 0.0)))
        self._decision = self._choice(
            pick.model,
            f"cheapest within {config.quality_delta:g} of the best ({best.model}, {best.quality:.3f}): "
            f"{pick.model}, {_quality_text(pick)}",
        )

    def choose(self, features: Mapping[str, float]) -> ModelChoice:
        return self._decision


class LatencyBudgetPolicy(SelectionPolicy):
    """Among candidates whose measured p95 latency is within `p95_ms`, the cheapest (or, with
    `prefer: best`, the best for the route); if none is, the fastest, and the reason says so."""

    name = "latency_budget"

    def __init__(self, config: SelectionConfig, route: str, candidates: list[Candidate]) -> None:
        super().__init__(config, route, candidates)
        if config.p95_ms is None:
            raise ConfigError(f"routing.routes.{route}.selection: policy 'latency_budget' needs 'p95_ms'")
        timed = self._need("p95_ms", [c for c in candidates if c.p95_ms is not None])
        budget = config.p95_ms
        fits = [c for c in timed if (c.p95_ms or 0.0) <= budget]
        if not fits:
            fastest = min(timed, key=lambda c: c.p95_ms or 0.0)
            reason = f"no candidate has p95 <= {budget:g} ms: the fastest, {fastest.model} ({fastest.p95_ms:g} ms)"
            self._decision = self._choice(fastest.model, reason)
            return
        if config.prefer == "best":
            rated = self._need(f"quality for route {route!r}", [c for c in fits if c.quality is not None])
            pick = max(rated, key=lambda c: (c.quality or 0.0, -c.cost_per_1k))
        else:
            pick = min(fits, key=lambda c: (c.cost_per_1k, c.p95_ms or 0.0))
        reason = f"{config.prefer} with p95 <= {budget:g} ms: {pick.model} ({pick.p95_ms:g} ms, {_quality_text(pick)})"
        self._decision = self._choice(pick.model, reason)

    def choose(self, features: Mapping[str, float]) -> ModelChoice:
        return self._decision


class ComplexityPolicy(SelectionPolicy):
    """The request's complexity score picks weak or strong: the weak model is the cheapest
    candidate, the strong one the best measured for the route (the dearest if none is measured)."""

    name = "complexity"

    def __init__(self, config: SelectionConfig, route: str, candidates: list[Candidate]) -> None:
        super().__init__(config, route, candidates)
        if not config.complexity.weights:
            raise ConfigError(
                f"routing.routes.{route}.selection.complexity: no weights; fit them with "
                "workbench.routing.fit_complexity (benchmarks/bench_routing.py prints a fitted block)"
            )
        self.weak = min(candidates, key=lambda c: c.cost_per_1k)
        rated = [c for c in candidates if c.quality is not None]
        if rated:
            self.strong = max(rated, key=lambda c: (c.quality or 0.0, -c.cost_per_1k))
        else:
            self.strong = max(candidates, key=lambda c: c.cost_per_1k)

    def choose(self, features: Mapping[str, float]) -> ModelChoice:
        score = complexity_score(self.config.complexity, dict(features))
        threshold = self.config.complexity.threshold
        if score >= threshold:
            return self._choice(self.strong.model, f"complexity {score:.3f} >= {threshold:g}: strong", score)
        return self._choice(self.weak.model, f"complexity {score:.3f} < {threshold:g}: weak", score)


def describe(candidates: list[Candidate]) -> list[dict[str, Any]]:
    """The candidates' resolved figures, for a cache key."""
    return [c.__dict__ for c in candidates]
