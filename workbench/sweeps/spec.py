"""`SweepSpec`: a sweep as typed data. It expands (`sweeps.expand`) into pipeline configs.

```yaml
name: quickstart-sweep
base: ../quickstart.yaml                 # relative to this file
axes:
  retrieval.top_k: [2, 4]                # a dotted config key and its values
  prompt:                                # a named axis: variants of whole sections
    terse: {generation.prompt: terse_qa}
    grounded: {generation.prompt: grounded_qa}
search: {strategy: grid}                 # grid | random | halving
objective: {metric: token_f1}            # direction defaults to the metric's natural one
constraints: [{metric: latency_s_p95, max: 2.0}]
budget: {model_calls: 500, wall_time_s: 900}
```
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, field_validator, model_validator

from workbench.core.config import ConfigModel, load_yaml
from workbench.core.errors import ConfigError
from workbench.sweeps._names import RUN_METRICS

Direction = Literal["maximize", "minimize"]

_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
# Metrics every sweep scores unless it names its own: offline and quick (no embedder, no judge).
DEFAULT_SWEEP_METRICS = ("hit_at_k", "mrr", "exact_match", "token_f1", "abstention")
# Scored metrics where lower is better; every other scored metric is maximised.
_LOWER_IS_BETTER: frozenset[str] = frozenset()


class SearchConfig(ConfigModel):
    strategy: Literal["grid", "random", "halving"] = "grid"
    samples: int | None = Field(
        None, gt=0, description="random (and halving): variants drawn at random; default: the whole grid"
    )
    seed: int = 0
    initial_questions: int = Field(8, gt=1, description="halving: questions in the first rung")
    factor: int = Field(2, ge=2, description="halving: each rung multiplies the questions by this")
    alpha: float = Field(0.05, gt=0, lt=1, description="significance level of paired tests (Holm-adjusted)")
    keep: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="halving: also keep at most this share of the variants per rung, best first "
        "(classic successive halving); default: drop only the significantly worse",
    )


class Objective(ConfigModel):
    metric: str
    direction: Direction | None = Field(None, description="default: the metric's natural direction")

    @property
    def resolved_direction(self) -> Direction:
        if self.direction is not None:
            return self.direction
        if self.metric in RUN_METRICS:
            return "minimize" if RUN_METRICS[self.metric] == "minimize" else "maximize"
        return "minimize" if self.metric in _LOWER_IS_BETTER else "maximize"


class Constraint(ConfigModel):
    metric: str
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _a_bound(self) -> Constraint:
        if self.min is None and self.max is None:
            raise ValueError(f"constraint on {self.metric} needs 'min' or 'max'")
        return self


class Budget(ConfigModel):
    """Caps on what a sweep spends; it stops cleanly at the first one reached."""

    questions: int | None = Field(None, gt=0, description="question runs (variant × question × repeat)")
    model_calls: int | None = Field(None, gt=0)
    tokens: int | None = Field(None, gt=0)
    dollars: float | None = Field(None, gt=0)
    wall_time_s: float | None = Field(None, gt=0)


class ConfirmConfig(ConfigModel):
    """Search on one split of the questions, then re-run the front on the held-out rest."""

    holdout: float = Field(0.0, ge=0, lt=1, description="share of questions held out; 0: no confirmation")
    seed: int = 0


AxisValues = list[Any] | dict[str, dict[str, Any]]


class SweepSpec(ConfigModel):
    name: str
    base: str = Field(description="the base pipeline config, relative to the spec file")
    axes: dict[str, AxisValues]
    search: SearchConfig = SearchConfig()
    objective: Objective = Objective(metric="token_f1")
    pareto: list[Objective] = Field(
        default_factory=lambda: [Objective(metric="cost_per_1k_questions"), Objective(metric="latency_s_p95")],
        description="what quality is traded against on the Pareto front",
    )
    constraints: list[Constraint] = []
    budget: Budget = Budget()
    metrics: list[str] | None = Field(None, description="scored metrics; default: a quick offline set")
    repeats: int = Field(1, ge=1, description="answers per question; repeats after the first bypass the cache")
    confirm: ConfirmConfig = ConfirmConfig()
    concurrency: int | None = Field(None, gt=0, description="questions in flight; default: the base config's")

    @field_validator("name")
    @classmethod
    def _slug(cls, name: str) -> str:
        if not _SLUG.match(name):
            raise ValueError(f"name {name!r} must be a plain folder name (letters, digits, '.', '_', '-')")
        return name

    @field_validator("axes")
    @classmethod
    def _axes_not_empty(cls, axes: dict[str, AxisValues]) -> dict[str, AxisValues]:
        if not axes:
            raise ValueError("a sweep needs at least one axis")
        for name, values in axes.items():
            if not values:
                raise ValueError(f"axis {name!r} has no values")
            if isinstance(values, list) and len({_canonical(v) for v in values}) != len(values):
                raise ValueError(f"axis {name!r} repeats a value")
        return axes

    @model_validator(mode="after")
    def _metrics_known(self) -> SweepSpec:
        from workbench.evaluation.metrics import JUDGED_METRICS, metric_registry

        registry = metric_registry()
        unknown = [m for m in self.scored_metrics if m not in registry.names()]
        if unknown:
            raise ValueError(f"unknown metric {unknown[0]!r}; valid: {', '.join(registry.names())}")
        judged = [m for m in self.scored_metrics if m in JUDGED_METRICS]
        if judged:
            raise ValueError(
                f"metric {judged[0]!r} needs an LLM judge, which sweeps do not run yet; "
                "score the winner with `eval --judge` instead"
            )
        known = set(self.scored_metrics) | set(RUN_METRICS)
        named = [("objective", self.objective.metric)]
        named += [("pareto", o.metric) for o in self.pareto]
        named += [("constraint", c.metric) for c in self.constraints]
        for where, metric in named:
            if metric not in known:
                raise ValueError(
                    f"{where} on unknown metric {metric!r}; valid: the scored metrics "
                    f"({', '.join(self.scored_metrics)}) or {', '.join(RUN_METRICS)}"
                )
        return self

    @property
    def scored_metrics(self) -> list[str]:
        return list(self.metrics or DEFAULT_SWEEP_METRICS)


def _canonical(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=True)


def load_spec(path: str | Path) -> tuple[SweepSpec, Path]:
    """The spec at `path`, and its base config's path (resolved against the spec's folder)."""
    path = Path(path)
    spec = load_yaml(SweepSpec, path)
    base = (path.parent / spec.base).resolve()
    if not base.is_file():
        raise ConfigError(f"{path}: base config {spec.base!r} not found (looked for {base})")
    return spec, base
