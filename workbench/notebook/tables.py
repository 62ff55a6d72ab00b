"""Tables shown in notebooks and printed by the CLI."""

from __future__ import annotations

import math

import pandas as pd

_HEADLINE = (
    "questions",
    "errors",
    "retrieval_hit_rate",
    "retrieval_mrr",
    "answer_contains_gold",
    "abstention_accuracy",
    "abstain_on_unanswerable",
    "latency_s_p50",
    "latency_s_p95",
    "tokens_in",
    "tokens_out",
    "cost_per_question",
    "cost_per_1k_tokens",
    "fallback_rate",
    "blocked_rate",
)


def summary_table(metrics: dict[str, float]) -> pd.DataFrame:
    """Headline metrics first, then per-stage, route and guard figures."""
    keys = [k for k in _HEADLINE if k in metrics] + sorted(k for k in metrics if k not in _HEADLINE)
    values = [metrics[k] for k in keys]
    shown = [f"{v:.4g}" if isinstance(v, float) and not math.isnan(v) else str(v) for v in values]
    return pd.DataFrame({"metric": keys, "value": shown}).set_index("metric")
