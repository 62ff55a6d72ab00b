"""Evaluation layer: metrics, the one scoring path, statistics and run comparison.

Heavy parts (ragas, embedders) load on first use; importing this package is cheap.
"""

from workbench.evaluation.base import Metric, MetricResult, ScoreInput
from workbench.evaluation.summary import summarize

__all__ = ["Metric", "MetricResult", "ScoreInput", "summarize"]
