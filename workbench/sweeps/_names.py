"""Names shared by the sweep's spec, engine, selection and logging.

A sweep's rows table has one row per (variant, question, repeat). Besides the runner's result
columns (`workbench.runner.question_row`) and one column per scored metric, it always has:
"""

from __future__ import annotations

ROW_KEY = ("variant", "question_id", "repeat")

# Per-row columns the engine adds: `model_calls`, `tokens` and `cost_fresh` count only what
# this row spent (a stage served from the cache spent nothing); `split` is "search" or "confirm".
ROW_ACCOUNTING = ("model_calls", "tokens", "cost_fresh", "split")

# Per-variant figures a leaderboard holds besides the scored metrics; objectives and
# constraints may name any of these or any metric the sweep scores.
RUN_METRICS: dict[str, str] = {
    "error_rate": "minimize",
    "cost_per_question": "minimize",
    "cost_per_1k_questions": "minimize",
    "latency_s_p50": "minimize",
    "latency_s_p95": "minimize",
    "tokens_per_question": "minimize",
    "model_calls_per_question": "minimize",
    "answer_contains_gold": "maximize",
    "retrieval_hit_rate": "maximize",
    "abstention_accuracy": "maximize",
}
