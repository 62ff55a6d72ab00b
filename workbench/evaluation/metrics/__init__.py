"""Offline and ragas metrics behind the workbench `Metric` contract, and their registry.

Metric modules (and ragas) are imported only when a metric is built.
"""

from workbench.evaluation.metrics.registry import DEFAULT_METRICS, JUDGED_METRICS, build_metrics, metric_registry

__all__ = ["DEFAULT_METRICS", "JUDGED_METRICS", "build_metrics", "metric_registry"]
