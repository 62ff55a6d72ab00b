"""The bridge from ragas metrics to the workbench `Metric` contract.

Every metric in this package is a ragas metric (a `ragas.metrics.collections.BaseMetric`, ragas'
own or one defined here) held by a `RagasMetric` adapter that maps a `ScoreInput` to the
metric's keyword arguments and ragas' result to a `MetricResult`. ragas is imported only
when a metric module is loaded, which the registry does lazily.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

from workbench.core.errors import MissingDependency
from workbench.core.offline import offline_environment
from workbench.evaluation.base import MetricKind, MetricResult, ScoreInput

# ragas posts usage analytics unless told not to, and its models read the hub variables.
offline_environment()

try:
    from ragas.metrics.collections import BaseMetric as RagasBaseMetric
    from ragas.metrics.result import MetricResult as RagasResult
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependency("ragas", "eval") from exc

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["RagasBaseMetric", "RagasMetric", "RagasResult", "NotApplicable"]


class NotApplicable(Exception):
    """Raised by a ragas metric defined here when a row gives it nothing to score (an empty
    answer, an abstention); the adapter turns it into value None, not failed."""


class RagasMetric:
    """Adapter: a ragas metric behind the workbench `Metric` protocol.

    Subclasses set `kind` and `requires`, build their ragas metric in `__init__`, and say how
    a row maps to its keyword arguments in `inputs`.
    """

    kind: ClassVar[MetricKind] = "offline"
    requires: ClassVar[tuple[str, ...]] = ("question", "answer", "contexts")

    def __init__(self, name: str, metric: RagasBaseMetric) -> None:
        self.name = name
        self.metric = metric

    def inputs(self, item: ScoreInput) -> Mapping[str, Any]:
        raise NotImplementedError

    async def ainputs(self, item: ScoreInput) -> Mapping[str, Any]:
        """`inputs`, with a chance to do async preparation (warming an embedding cache)."""
        return self.inputs(item)

    async def ascore(self, item: ScoreInput) -> MetricResult:
        try:
            result = await self.metric.ascore(**await self.ainputs(item))
        except NotApplicable:
            return MetricResult(value=None)
        value = result.value
        if value is None:  # ragas reports its own failures as a None value with a reason
            return MetricResult(value=None, failed=True, error=str(result.reason or "no value"))
        value = _snap(float(value))
        invalid = self.metric.validate_result_value(value) if not math.isnan(value) else "NaN"
        if invalid:
            return MetricResult(value=None, failed=True, error=f"{self.name}: {invalid}")
        return MetricResult(value=value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _snap(value: float, eps: float = 1e-6) -> float:
    """Round float noise at the ends of the usual range (a cosine of 1.0000001) onto it."""
    for bound in (-1.0, 0.0, 1.0):
        if abs(value - bound) < eps:
            return bound
    return value
