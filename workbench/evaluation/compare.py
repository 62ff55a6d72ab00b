"""Compare two evaluation runs question by question, in a way that cannot flatter either one.

Each side is a per-question results table: a DataFrame, a results file (parquet, jsonl,
csv) or an MLflow run id read through a tracker's `load_table`. The two tables must cover
the same questions of the same dataset; the comparison is then paired: for every metric,
the mean difference `B - A` with an interval, a sign-flip p-value, and per-question wins,
losses and ties. A *win* always means B did better, so for latency and cost (lower is
better) a win is a question where B was lower.

What keeps the comparison honest:

- A question that errored (or has no answer) on one side is that side's loss, scored at the
  metric's worst value; it is never dropped. Errored on both sides, it is a tie.
- Only quality, cost and latency columns are metrics; bookkeeping (`cached_stages`,
  `route_score`, ids, ...) is not (`_compare_columns.py` lists each and why).
- p-values are Holm-adjusted over the metrics compared, and significance is decided on the
  adjusted value.
- Pass/fail metrics get Newcombe's paired score interval, others a BCa bootstrap, so a small
  run does not show a certain-looking [1, 1].
- Latency of a question that any stage cache served, on either side, is not latency: those
  pairs are left out of latency metrics, and when none is left latency is not compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.core.errors import EvaluationError
from workbench.evaluation._compare_columns import compared_by_default, higher_is_better, metric_kind, not_a_metric
from workbench.evaluation._compare_tables import (
    TableSource,
    cache_served,
    check_dataset,
    check_questions,
    errored,
    load_side,
    question_ids,
)
from workbench.evaluation.stats import holm_adjust, metric_values, paired_bootstrap

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Comparison", "TableSource", "compare", "higher_is_better"]

_SUMMARY_COLUMNS = [
    "metric",
    "mean_a",
    "mean_b",
    "diff",
    "ci_low",
    "ci_high",
    "p_value",
    "p_holm",
    "significant",
    "n",
    "wins",
    "losses",
    "ties",
    "errored_a",
    "errored_b",
    "errored_both",
    "cached_left_out",
    "direction",
    "interval",
    "note",
]
_PER_QUESTION_COLUMNS = ["question_id", "question", "metric", "a", "b", "diff", "outcome", "note"]


@dataclass(frozen=True)
class Comparison:
    """The paired comparison of run B against run A.

    `summary` has one row per metric: means, `diff` (B - A) with its interval (`interval`
    names the method), the raw `p_value` and the Holm-adjusted `p_holm` that `significant`
    is decided on, wins/losses/ties, how many pairs errored on one side or both, how many
    cache-served pairs were left out (latency only), and a `note` when a metric could not be
    compared. `per_question` has one row per (question, metric), with `outcome` "win"
    (B better), "loss", "tie", or missing when unscored, and a `note` saying why a pair was
    decided by an error or left out.

    `errored_a`, `errored_b` and `errored_both` count questions that errored only in A, only
    in B, and in both; `cached` counts questions a stage cache served on either side.
    """

    label_a: str
    label_b: str
    summary: pd.DataFrame
    per_question: pd.DataFrame
    confidence: float
    dataset: str | None = None
    errored_a: int = 0
    errored_b: int = 0
    errored_both: int = 0
    cached: int = 0

    def to_text(self) -> str:
        """A plain-text table for the terminal."""
        n_questions = self.per_question["question_id"].nunique()
        head = f"A: {self.label_a}\nB: {self.label_b}\n{n_questions} questions"
        if self.dataset:
            head += f" of dataset {self.dataset}"
        head += f"; diff = B - A with a {self.confidence:.0%} interval; win = B better"
        if self.errored_a or self.errored_b or self.errored_both:
            head += (
                f"\nerrored: {self.errored_a} only in A (A's losses), {self.errored_b} only in B (B's losses),"
                f" {self.errored_both} in both (ties)"
            )
        if self.cached:
            head += f"\nlatency: {self.cached} questions served from the stage cache are left out"
        rows = [["metric", "A", "B", "diff", "interval", "p", "p holm", "n", "win/loss/tie", "", "note"]]
        for r in self.summary.itertuples(index=False):
            rows.append(
                [
                    f"{r.metric} ({r.direction})",
                    _num(r.mean_a),
                    _num(r.mean_b),
                    _num(r.diff, signed=True),
                    f"[{_num(r.ci_low, signed=True)}, {_num(r.ci_high, signed=True)}] {_text(r.interval)}".rstrip(),
                    _num(r.p_value, digits=3),
                    _num(r.p_holm, digits=3),
                    str(r.n),
                    f"{r.wins}/{r.losses}/{r.ties}",
                    "*" if r.significant else "",
                    _text(r.note),
                ]
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
        tested = int(self.summary["p_holm"].notna().sum())
        foot = (
            f"* significant: interval excludes 0 and Holm-adjusted p below {1 - self.confidence:.2g}"
            f" ({tested} metric{'s' if tested != 1 else ''} tested together)"
        )
        return "\n".join([head, "", *lines, "", foot])


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""  # a missing cell reads back as NaN


def _num(value: Any, *, digits: int = 4, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:+.{digits}g}" if signed else f"{value:.{digits}g}"


# -- metrics ---------------------------------------------------------------------------------


def _numeric_columns(frame: pd.DataFrame) -> list[str]:
    import pandas as pd

    out = []
    for column in frame.columns:
        series = frame[column]
        if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
            out.append(str(column))
        elif series.dtype == object:
            present = series.dropna()
            if len(present) and all(isinstance(v, bool | int | float | np.number) for v in present):
                out.append(str(column))
    return out


def _choose_metrics(a: pd.DataFrame, b: pd.DataFrame, metrics: list[str] | None) -> list[str]:
    in_b = set(_numeric_columns(b))
    shared = [c for c in _numeric_columns(a) if c in in_b]
    candidates = [c for c in shared if not_a_metric(c) is None]
    if metrics is None:
        chosen = [c for c in candidates if compared_by_default(c)]
        if not chosen:
            raise EvaluationError(f"the runs share no metric columns; numeric columns: {', '.join(shared) or 'none'}")
        return chosen
    for name in metrics:
        reason = not_a_metric(name)
        if reason:
            raise EvaluationError(f"{name} is not a metric: {reason}")
    unknown = [m for m in metrics if m not in shared]
    if unknown:
        raise EvaluationError(f"unknown metric {', '.join(unknown)}; available: {', '.join(candidates) or 'none'}")
    return list(dict.fromkeys(metrics))


def _outcomes(diff: np.ndarray, higher: bool) -> np.ndarray:
    """ "win" where B is better, "loss" where worse, "tie" where equal, None where unscored."""
    signed = diff if higher else -diff
    out = np.full(len(diff), None, dtype=object)
    out[signed > 0] = "win"
    out[signed < 0] = "loss"
    out[signed == 0] = "tie"
    return out


def _worst(values: np.ndarray, higher: bool) -> float:
    """What an errored answer scores: the worst value either run reached, and for a score no
    more than 0, so that a failure never looks better, cheaper or faster than an answer."""
    seen = values[~np.isnan(values)]
    if not len(seen):
        return math.nan
    return min(0.0, float(seen.min())) if higher else float(seen.max())


@dataclass(frozen=True)
class _Pairs:
    """One metric's paired values after errors are scored and cache-served latency is left out."""

    a: np.ndarray  # NaN where unscored or left out
    b: np.ndarray
    outcome: np.ndarray
    note: np.ndarray
    errored_a: int
    errored_b: int
    errored_both: int
    cached_left_out: int
    comparable: bool


def _pair(
    metric: str, a: np.ndarray, b: np.ndarray, err_a: np.ndarray, err_b: np.ndarray, cached: np.ndarray
) -> _Pairs:
    higher = higher_is_better(metric)
    left_out = cached if metric_kind(metric) == "latency" else np.zeros(len(a), dtype=bool)
    va, vb = a.copy(), b.copy()
    va[err_a | left_out], vb[err_b | left_out] = np.nan, np.nan  # an error's latency or cost is no answer's
    worst = _worst(np.concatenate([va, vb]), higher)
    # The errored side takes the worst value where the other side shows the metric applies.
    only_a = err_a & ~err_b & ~left_out & ~np.isnan(vb)
    only_b = err_b & ~err_a & ~left_out & ~np.isnan(va)
    both = err_a & err_b & ~left_out & (not math.isnan(worst))
    va[only_a | both], vb[only_b | both] = worst, worst
    outcome = _outcomes(vb - va, higher)
    outcome[only_a], outcome[only_b], outcome[both] = "win", "loss", "tie"
    note = np.full(len(a), None, dtype=object)
    note[left_out], note[only_a], note[only_b], note[both] = (
        "served from cache",
        "A errored",
        "B errored",
        "both errored",
    )
    answered = ~np.isnan(va) & ~np.isnan(vb) & ~both
    comparable = not (left_out.any() and not answered.any())
    if not comparable:
        va[:], vb[:], outcome[:] = np.nan, np.nan, None
    return _Pairs(
        va, vb, outcome, note, int(only_a.sum()), int(only_b.sum()), int(both.sum()), int(left_out.sum()), comparable
    )


# -- compare ---------------------------------------------------------------------------------


def compare(
    a: pd.DataFrame | str | Path,
    b: pd.DataFrame | str | Path,
    *,
    metrics: list[str] | None = None,
    tracker: TableSource | None = None,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int | None = 0,
) -> Comparison:
    """Compare run B against run A on the same questions.

    `a` and `b` are each a results DataFrame, a results file (.parquet, .jsonl, .csv, or a
    run folder holding results.parquet) or a run id read with `tracker.load_table` (a
    tracker must be given for run ids).

    `metrics` defaults to the quality, cost (`cost`, `tokens_*`) and latency (`latency_s`)
    columns both tables share; per-stage timings (`t_*`) are compared when named. Naming a
    bookkeeping column (`cached_stages`, `route_score`, ids, ...) is an error.

    A question that failed (non-empty `error`, or no `answer`) on one side is that side's
    loss and takes the metric's worst value; on both sides it is a tie. Latency pairs that a
    stage cache served on either side are left out. A missing score on a side that did
    answer (a metric that failed or does not apply) leaves that pair out of that metric.

    Raises `EvaluationError` when the runs cover different questions or datasets, or a
    requested metric is not a metric or not in both tables.
    """
    import pandas as pd

    side_a, tracker = load_side(a, tracker, "A")
    side_b, tracker = load_side(b, tracker, "B")
    dataset = check_dataset(side_a, side_b)
    ids_a, ids_b = question_ids(side_a), question_ids(side_b)
    check_questions(ids_a, ids_b)
    chosen = _choose_metrics(side_a.frame, side_b.frame, metrics)

    fa = side_a.frame.set_axis(ids_a.to_numpy(), axis=0)
    fb = side_b.frame.set_axis(ids_b.to_numpy(), axis=0).reindex(fa.index)
    err_a, err_b = errored(fa), errored(fb)
    cached = cache_served(fa) | cache_served(fb)
    question = _question_text(fa, fb)

    summary_rows: list[dict[str, Any]] = []
    per_question: list[pd.DataFrame] = []
    for metric in chosen:
        pairs = _pair(metric, metric_values(fa[metric]), metric_values(fb[metric]), err_a, err_b, cached)
        # Only a quality score can be pass/fail; a cost or latency that happens to be all 0 is not.
        binary = None if metric_kind(metric) == "quality" else False
        test = paired_bootstrap(
            pairs.a, pairs.b, n_resamples=n_resamples, confidence=confidence, seed=seed, binary=binary
        )
        scored = ~np.isnan(pairs.a) & ~np.isnan(pairs.b)
        summary_rows.append(
            {
                "metric": metric,
                "mean_a": float(pairs.a[scored].mean()) if scored.any() else math.nan,
                "mean_b": float(pairs.b[scored].mean()) if scored.any() else math.nan,
                "diff": test.mean_diff,
                "ci_low": test.low,
                "ci_high": test.high,
                "p_value": test.p_value,
                "n": test.n,
                "wins": int(np.sum(pairs.outcome == "win")),
                "losses": int(np.sum(pairs.outcome == "loss")),
                "ties": int(np.sum(pairs.outcome == "tie")),
                "errored_a": pairs.errored_a,
                "errored_b": pairs.errored_b,
                "errored_both": pairs.errored_both,
                "cached_left_out": pairs.cached_left_out,
                "direction": "higher" if higher_is_better(metric) else "lower",
                "interval": test.method if test.n else None,
                "note": _note(pairs),
            }
        )
        per_question.append(
            pd.DataFrame(
                {
                    "question_id": fa.index.to_numpy(),
                    "question": question,
                    "metric": metric,
                    "a": pairs.a,
                    "b": pairs.b,
                    "diff": pairs.b - pairs.a,
                    "outcome": pairs.outcome,
                    "note": pairs.note,
                }
            )
        )
    # One family of tests: every metric compared. Significance is decided on the adjusted p.
    alpha = 1.0 - confidence
    for row, adjusted in zip(summary_rows, holm_adjust([r["p_value"] for r in summary_rows]), strict=True):
        row["p_holm"] = adjusted
        row["significant"] = bool(adjusted < alpha and (row["ci_low"] > 0 or row["ci_high"] < 0))
    return Comparison(
        label_a=side_a.label,
        label_b=side_b.label,
        summary=pd.DataFrame(summary_rows, columns=_SUMMARY_COLUMNS),
        per_question=pd.concat(per_question, ignore_index=True)[_PER_QUESTION_COLUMNS],
        confidence=confidence,
        dataset=dataset,
        errored_a=int(np.sum(err_a & ~err_b)),
        errored_b=int(np.sum(err_b & ~err_a)),
        errored_both=int(np.sum(err_a & err_b)),
        cached=int(cached.sum()),
    )


def _note(pairs: _Pairs) -> str | None:
    if not pairs.comparable:
        return f"not comparable: every answered pair was served from the stage cache ({pairs.cached_left_out} left out)"
    if pairs.cached_left_out:
        return f"{pairs.cached_left_out} cache-served pairs left out"
    return None


def _question_text(fa: pd.DataFrame, fb: pd.DataFrame) -> np.ndarray:
    if "question" in fa.columns:
        return fa["question"].to_numpy(dtype=object)
    if "question" in fb.columns:
        return fb["question"].to_numpy(dtype=object)
    return np.full(len(fa), None, dtype=object)
