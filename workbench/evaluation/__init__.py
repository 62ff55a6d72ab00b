"""Evaluation layer: metrics and run summaries."""

from workbench.evaluation.summary import summarize

__all__ = ["summarize"]
