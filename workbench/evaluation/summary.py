"""Aggregate a per-question results table into run metrics."""

from __future__ import annotations

import math

import pandas as pd

from workbench.evaluation.calibration_counts import label_metrics


def _rate(series: pd.Series) -> float:
    series = series.dropna()
    return float(series.astype(float).mean()) if len(series) else math.nan


def _percentiles(df: pd.DataFrame, column: str, prefix: str) -> dict[str, float]:
    values = df[column].dropna()
    if values.empty:
        return {}
    return {f"{prefix}_p50": float(values.quantile(0.5)), f"{prefix}_p95": float(values.quantile(0.95))}


def summarize(df: pd.DataFrame) -> dict[str, float]:
    """Latency, tokens, cost, retrieval hits, abstention, routes, guards and fallbacks."""
    ok = df[df["error"].isna()] if "error" in df else df
    tokens = ok["tokens_in"].sum() + ok["tokens_out"].sum()
    metrics: dict[str, float] = {
        "questions": float(len(df)),
        "errors": float(len(df) - len(ok)),
        "tokens_in": float(ok["tokens_in"].sum()),
        "tokens_out": float(ok["tokens_out"].sum()),
        "cost_total": float(ok["cost"].sum()),
        "cost_per_question": float(ok["cost"].mean()) if len(ok) else math.nan,
        "cost_per_1k_tokens": float(ok["cost"].sum() / tokens * 1000) if tokens else 0.0,
        "fallback_rate": _rate(ok["fallback_used"]),
        "blocked_rate": _rate(ok["blocked"]),
    }
    if "cached_stages" in ok:
        # Latency of a run served from the stage cache is not the pipeline's latency: say so.
        metrics["stage_cache_hit_rate"] = _rate(ok["cached_stages"] > 0)
    metrics |= _percentiles(ok, "latency_s", "latency_s")
    for column in [c for c in ok.columns if c.startswith("t_")]:
        metrics |= _percentiles(ok, column, f"stage_{column[2:]}_s")
    answerable = ok[ok["answerable"] & ok["has_evidence"]]
    metrics["retrieval_hit_rate"] = _rate(answerable["hit"])
    metrics["retrieval_mrr"] = _rate(answerable["hit_rank"].map(lambda r: 1.0 / r if r and r > 0 else 0.0))
    metrics["answer_contains_gold"] = _rate(ok[ok["answerable"]]["contains_gold"])
    metrics["abstention_accuracy"] = _rate(ok["abstained"] == ~ok["answerable"])
    metrics["abstain_on_unanswerable"] = _rate(ok[~ok["answerable"]]["abstained"])
    for route, share in ok["route"].value_counts(normalize=True).items():
        metrics[f"route_share.{route}"] = float(share)
    for check, count in _guard_counts(ok).items():
        metrics[f"guard_triggered.{check}"] = float(count)
    # Confusion counts and route accuracy, only where questions carry labels.
    metrics |= label_metrics(ok)
    return metrics


def _guard_counts(df: pd.DataFrame) -> dict[str, int]:
    counts: dict[str, int] = {}
    for triggered in df["guards_triggered"]:
        for check in triggered or []:
            counts[check] = counts.get(check, 0) + 1
    return counts
