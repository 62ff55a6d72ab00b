"""Which results columns `compare` may compare, what kind of metric each is, and which way
is better.

A column is compared only if it measures an answer's quality, cost or latency. Everything
else in a results table is bookkeeping: comparing it would report a "difference" that says
nothing about the config (or, like `cached_stages`, says something about the cache).
"""

from __future__ import annotations

from typing import Literal

Kind = Literal["quality", "cost", "latency"]

# Known bookkeeping columns and why each is not a metric. Named explicitly so that the choice is
# deliberate and a new column is a decision, not an accident.
_BOOKKEEPING = {
    "question_id": "an identifier",
    "run_id": "an identifier",
    "index": "a row index",
    "repeat": "which repeat of a question a row is",
    "variant": "which variant of a sweep a row belongs to",
    "seed": "a random seed",
    "answerable": "a property of the question, the same in both runs",
    "has_evidence": "a property of the question, the same in both runs",
    "hit_rank": "a rank with 0 for no hit, whose mean means nothing; hit and mrr measure it",
    "route_score": "the router's confidence, not the answer's quality",
    "cached_stages": "how many stages the stage cache served, not how good the answer was",
    "abstained": "right or wrong depending on the question; the abstention metric scores it",
    "blocked": "right or wrong depending on the question; a guard's decision, not a score",
    "fallback_used": "which model answered; its effect shows in quality, cost and latency",
}
# Text columns: a CSV or JSON file reads one back as numbers (all NaN) when every cell is empty.
_TEXT = ("question", "answer", "gold_answer", "error", "route", "dataset", "dataset_hash", "config_name")
# Scoring writes `<metric>__failed/__error/__retries/__variance`; a judge may write `judge_*`
# columns (retries, variance); summaries carry `_ci_low/_ci_high`; pandas names a written-out
# index `Unnamed: 0`.
_BOOKKEEPING_SUFFIXES = ("_failed", "_error", "_retries", "_variance", "_ci_low", "_ci_high")
_BOOKKEEPING_PREFIXES = ("judge_", "Unnamed: ")

# Cost: what answering costs. Tokens are cost too: with local models `cost` is 0 and tokens
# are the only price there is.
_COST = frozenset({"cost", "tokens_in", "tokens_out"})
_COST_PREFIXES = ("cost_", "tokens_")
# Latency: end-to-end seconds, and per-stage seconds (`t_<stage>`). Stage timings are compared
# only when asked for: they break latency_s down rather than adding a question of their own.
_LATENCY = frozenset({"latency_s"})
_STAGE_TIMING_PREFIX = "t_"


def not_a_metric(name: str) -> str | None:
    """Why `name` is bookkeeping rather than a metric, or None when it is a metric."""
    if name in _BOOKKEEPING:
        return _BOOKKEEPING[name]
    if name in _TEXT:
        return "a text column, not a score"
    if name.endswith(_BOOKKEEPING_SUFFIXES):
        return "a record of how a metric was scored"
    if name.startswith(_BOOKKEEPING_PREFIXES):
        return "a record of how the row was produced"
    return None


def metric_kind(name: str) -> Kind:
    """What a metric column measures; any column that is not bookkeeping, cost or latency is
    a quality score (the scoring path names its columns after the metrics)."""
    if name in _COST or name.startswith(_COST_PREFIXES):
        return "cost"
    if name in _LATENCY or name.startswith(_STAGE_TIMING_PREFIX):
        return "latency"
    return "quality"


def compared_by_default(name: str) -> bool:
    return not_a_metric(name) is None and not name.startswith(_STAGE_TIMING_PREFIX)


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of `metric` is the better one (latency, cost, tokens: no)."""
    return metric_kind(metric) == "quality"
