"""Pick a sweep's winner so that it holds up: a leaderboard with intervals, paired tests of the
best variant against every other one, and the cheapest of those it cannot be told apart from.

The input is the sweep's rows table, one row per (variant, question_id, repeat). The rules
follow `workbench.evaluation.compare`, so a sweep and a two-run comparison never disagree:

- A row that errored is a failure, not a low score. Leaderboard means are over answered rows
  and the errors show in `error_rate`; paired tests score an errored row at the objective's
  worst value (a loss), never drop it.
- Repeats of a question are averaged first, so intervals and tests are over questions.
- Latency (and the fresh-only `model_calls` count) of a row that a stage cache served is not
  the pipeline's, so paired tests leave those rows out.
- Paired tests run together are Holm-adjusted; significant means the adjusted p is below
  `alpha` and the interval excludes 0.

Pass the rows of the split you decide on (e.g. only `split == "confirm"`): nothing here
filters by split.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from workbench.core.errors import EvaluationError
from workbench.evaluation._compare_tables import cache_served, errored
from workbench.evaluation.stats import bootstrap_ci, holm_adjust, metric_values, paired_bootstrap
from workbench.sweeps._names import RUN_METRICS

__all__ = [
    "Constraint",
    "Direction",
    "Selection",
    "leaderboard",
    "pareto_front",
    "per_question",
    "prune",
    "select_winner",
]

Direction = Literal["maximize", "minimize"]
Constraint = tuple[str, float | None, float | None]  # (metric, min, max); None: no bound

# Below this many shared questions a paired test has too little power to call anything, and a
# pruned variant never comes back: `prune` keeps everyone until there is evidence.
_MIN_SHARED_QUESTIONS = 5
# Estimates equal up to float noise (the same scores summed in another order) are a tie.
_DIGITS = 12
_COMPARISON_COLUMNS = [
    "variant",
    "versus",
    "diff",
    "ci_low",
    "ci_high",
    "p_value",
    "p_holm",
    "significant",
    "n",
    "wins",
    "losses",
]
# Counts that include only what this row spent fresh, and timings: a cache-served row's value
# is the cache's, not the variant's.
_CACHE_SENSITIVE = frozenset({"latency_s", "latency_s_p50", "latency_s_p95", "model_calls", "model_calls_per_question"})
_PERCENTILES = {"latency_s_p50": 50.0, "latency_s_p95": 95.0}
# Tie-breaks and what "cheapest" means: cost per 1k questions, then p95 latency.
_CHEAP = [("cost_per_1k_questions", True), ("latency_s_p95", True)]
_CHEAP_UNITS = [("cost_per_1k_questions", "per 1k questions"), ("latency_s_p95", "s p95 latency")]
_PARETO_COSTS: list[tuple[str, Direction]] = [("cost_per_1k_questions", "minimize"), ("latency_s_p95", "minimize")]


# -- per-row values ----------------------------------------------------------------------------


def _column(rows: pd.DataFrame, name: str) -> np.ndarray:
    if name not in rows.columns:
        return np.full(len(rows), math.nan)
    return metric_values(rows[name])


def _only_where(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = values.copy()
    out[~(mask == 1)] = math.nan  # NaN in the mask (a missing flag) also leaves the row out
    return out


def _row_values(rows: pd.DataFrame, name: str) -> np.ndarray:
    """Each row's value of a run metric or a scored metric; NaN where it does not apply."""
    answerable = _column(rows, "answerable")
    derived: dict[str, Callable[[], np.ndarray]] = {
        "error_rate": lambda: errored(rows).astype(float),
        "cost_per_question": lambda: _column(rows, "cost"),
        "cost_per_1k_questions": lambda: 1000.0 * _column(rows, "cost"),
        "latency_s_p50": lambda: _column(rows, "latency_s"),
        "latency_s_p95": lambda: _column(rows, "latency_s"),
        # Tokens in and out, not the fresh-only `tokens`: what a question costs when deployed,
        # not what this sweep happened to spend with a warm cache.
        "tokens_per_question": lambda: _column(rows, "tokens_in") + _column(rows, "tokens_out"),
        "model_calls_per_question": lambda: _column(rows, "model_calls"),
        "answer_contains_gold": lambda: _only_where(_column(rows, "contains_gold"), answerable),
        "retrieval_hit_rate": lambda: _only_where(_column(rows, "hit"), answerable * _column(rows, "has_evidence")),
        "abstention_accuracy": lambda: _abstention(answerable, _column(rows, "abstained")),
    }
    return derived[name]() if name in derived else _column(rows, name)


def _abstention(answerable: np.ndarray, abstained: np.ndarray) -> np.ndarray:
    """1 where a row abstained exactly when its question was unanswerable; NaN where unknown."""
    right = (abstained == 1 - answerable).astype(float)
    return np.where(np.isnan(answerable) | np.isnan(abstained), math.nan, right)


def _reduce(name: str, values: np.ndarray) -> float:
    """A variant's figure from its values: a percentile for latency percentiles, else the mean."""
    values = values[~np.isnan(values)]
    if not len(values):
        return math.nan
    if name in _PERCENTILES:
        return float(np.percentile(values, _PERCENTILES[name]))
    return float(values.mean())


def _check_direction(direction: str) -> None:
    if direction not in ("maximize", "minimize"):
        raise EvaluationError(f"direction must be 'maximize' or 'minimize', got {direction!r}")


def _variants(rows: pd.DataFrame) -> list[str]:
    if "variant" not in rows.columns or "question_id" not in rows.columns:
        raise EvaluationError("a sweep's rows need 'variant' and 'question_id' columns")
    return sorted(map(str, rows["variant"].dropna().unique()))


# -- leaderboard -------------------------------------------------------------------------------


def leaderboard(rows: pd.DataFrame, metrics: list[str], *, seed: int = 0) -> pd.DataFrame:
    """One row per variant (sorted by id): counts, each metric with its interval, and RUN_METRICS.

    Columns: `variant`, `questions` (distinct ids), `rows`, `errors`, `error_rate` (errored
    rows / rows), then per metric `<m>`, `<m>_ci_low`, `<m>_ci_high`, `<m>_n`, then every
    name in RUN_METRICS. A metric's mean and interval are over questions: repeats of a
    question are averaged first, over answered rows only, and `<m>_n` counts the questions
    with a value. Every run figure is over answered rows too (errors show only in
    `error_rate`): costs and tokens are means per row; `latency_s_p50/p95` and
    `model_calls_per_question` use only rows no stage cache served when a variant has any,
    and all its answered rows otherwise (a fully cached variant still shows a figure, which
    then says more about the cache than the pipeline). A column missing from `rows` gives NaN.
    """
    out: list[dict[str, object]] = []
    failed = errored(rows)
    cached = cache_served(rows)
    variants = _variants(rows)
    question_ids = rows["question_id"].astype(str).to_numpy()
    # A run figure's column is its own (error_rate is over all rows, not answered ones).
    scored = [m for m in dict.fromkeys(metrics) if m not in RUN_METRICS]
    for variant in variants:
        mine = (rows["variant"].astype(str) == variant).to_numpy()
        ok = mine & ~failed
        record: dict[str, object] = {
            "variant": variant,
            "questions": int(pd.unique(question_ids[mine]).size),
            "rows": int(mine.sum()),
            "errors": int((mine & failed).sum()),
            "error_rate": float((mine & failed).sum() / mine.sum()),
        }
        for metric in scored:
            per_q = pd.Series(_row_values(rows, metric)[ok]).groupby(question_ids[ok]).mean()
            ci = bootstrap_ci(per_q.to_numpy(), seed=seed)
            record |= {metric: ci.estimate, f"{metric}_ci_low": ci.low, f"{metric}_ci_high": ci.high}
            record[f"{metric}_n"] = ci.n
        for name in RUN_METRICS:
            if name == "error_rate":
                continue
            use = ok & ~cached if name in _CACHE_SENSITIVE and (ok & ~cached).any() else ok
            record[name] = _reduce(name, _row_values(rows, name)[use])
        out.append(record)
    figures = [f"{m}{suffix}" for m in scored for suffix in ("", "_ci_low", "_ci_high", "_n")]
    columns = [
        "variant",
        "questions",
        "rows",
        "errors",
        "error_rate",
        *figures,
        *(n for n in RUN_METRICS if n != "error_rate"),
    ]
    return pd.DataFrame(out, columns=columns)


# -- per question ------------------------------------------------------------------------------


def per_question(rows: pd.DataFrame, metric: str, direction: Direction) -> pd.DataFrame:
    """Each question's objective value for each variant (index `question_id`, one column per
    variant), the mean over its repeats.

    `metric` is a scored metric or a RUN_METRICS name (its per-row quantity: `cost` for
    costs, `latency_s` for latency percentiles, ...). An errored row is a loss, scored as in
    `compare`: the worst value any variant's answered rows reached, and for a score to
    maximize no more than 0; it takes that value only on a question where some answered row
    shows the metric applies (or where every row errored). For `error_rate` the error is
    itself the value. Cache-served rows are left out of latency and model calls. A question
    a variant did not run, or where nothing is left, is NaN.
    """
    _check_direction(direction)
    variants = _variants(rows)
    values = _row_values(rows, metric)
    left_out = cache_served(rows) if metric in _CACHE_SENSITIVE else np.zeros(len(rows), dtype=bool)
    values[left_out] = math.nan
    qids = rows["question_id"].astype(str).to_numpy()
    if metric != "error_rate":
        failed = errored(rows)
        values[failed] = math.nan  # an error's cost or latency is no answer's
        seen = values[~np.isnan(values)]
        if len(seen):
            # Reimplements compare._worst (private there) on all variants' values at once.
            worst = min(0.0, float(seen.min())) if direction == "maximize" else float(seen.max())
            applies = pd.Series(~np.isnan(values)).groupby(qids).transform("any").to_numpy()
            answered_any = pd.Series(~failed).groupby(qids).transform("any").to_numpy()
            # As in compare, a cache-served row is left out even when it errored.
            values[failed & ~left_out & (applies | ~answered_any)] = worst
    frame = pd.DataFrame({"variant": rows["variant"].astype(str).to_numpy(), "question_id": qids, "v": values})
    table = frame.pivot_table(index="question_id", columns="variant", values="v", aggfunc="mean", dropna=False)
    table = table.reindex(columns=variants).sort_index()
    table.columns.name = None
    return table


def _paired(
    table: pd.DataFrame, best: str, others: list[str], direction: Direction, alpha: float, seed: int
) -> pd.DataFrame:
    """Paired tests of each of `others` against `best` on the questions both have a value for,
    Holm-adjusted together. `diff` is other - best; `wins` counts questions the other did better."""
    sign = 1.0 if direction == "maximize" else -1.0
    # Only a score can be pass/fail; a cost or latency that happens to be all 0 is not.
    binary = None if direction == "maximize" else False
    pairs = [table[[best, other]].dropna() for other in others]
    tests = [
        paired_bootstrap(pair[best], pair[other], confidence=1 - alpha, seed=seed, binary=binary)
        for pair, other in zip(pairs, others, strict=True)
    ]
    adjusted = holm_adjust([t.p_value for t in tests])
    records = []
    for other, pair, test, p_holm in zip(others, pairs, tests, adjusted, strict=True):
        better = sign * (pair[other].to_numpy() - pair[best].to_numpy())
        records.append(
            {
                "variant": other,
                "versus": best,
                "diff": test.mean_diff,
                "ci_low": test.low,
                "ci_high": test.high,
                "p_value": test.p_value,
                "p_holm": p_holm,
                "significant": bool(p_holm < alpha and (test.low > 0 or test.high < 0)),
                "n": test.n,
                "wins": int((better > 0).sum()),
                "losses": int((better < 0).sum()),
            }
        )
    return pd.DataFrame(records, columns=_COMPARISON_COLUMNS)


def _sorted(board: pd.DataFrame, keys: list[tuple[str, bool]]) -> pd.DataFrame:
    """`board` ordered by (column, ascending) keys with NaN last, then by variant id."""
    tmp = pd.DataFrame(
        {f"k{i}": board[column].astype(float).round(_DIGITS) for i, (column, _) in enumerate(keys)},
        index=board.index,
    )
    tmp["id"] = board["variant"].astype(str)
    ascending = [up for _, up in keys] + [True]
    order = tmp.sort_values(list(tmp.columns), ascending=ascending, na_position="last", kind="mergesort").index
    return board.loc[order].reset_index(drop=True)


# -- selection ---------------------------------------------------------------------------------


@dataclass
class Selection:
    """The outcome of `select_winner`.

    `best` is the feasible variant with the best objective score (None when none qualifies);
    `tied` is `best` plus the feasible variants a paired test cannot tell from it after Holm
    (a variant sharing no question with it is never tied), in rank order; `recommended` is
    the cheapest of `tied`. `violations` maps each infeasible variant to its constraint
    failures. `comparisons` has one row per other variant against `best`: `diff` is
    variant - best, `wins`/`losses` count questions where the variant did better/worse.
    `leaderboard` is `leaderboard()` plus `objective_score` (the objective with errors
    counted as losses, what ranking uses), `rank`, `feasible` and `pareto` (not dominated on
    objective score, cost per 1k questions and p95 latency), sorted by rank.
    """

    best: str | None
    recommended: str | None
    tied: list[str]
    feasible: list[str]
    violations: dict[str, list[str]]
    comparisons: pd.DataFrame
    leaderboard: pd.DataFrame
    note: str


def _fmt(value: float) -> str:
    text = f"{value:.4g}"
    return text if any(c in text for c in ".en") else f"{text}.0"  # 2.0, not 2; nan and inf as is


def _violations(record: pd.Series, constraints: list[Constraint]) -> list[str]:
    out = []
    for name, low, high in constraints:
        value = float(record[name])
        if math.isnan(value):
            out.append(f"{name} has no value")
        elif low is not None and value < low:
            out.append(f"{name} {_fmt(value)} < {_fmt(low)}")
        elif high is not None and value > high:
            out.append(f"{name} {_fmt(value)} > {_fmt(high)}")
    return out


def _infeasible_note(board: pd.DataFrame, constraints: list[Constraint], violations: dict[str, list[str]]) -> str:
    counts = {
        name: sum(any(m.startswith(f"{name} ") for m in found) for found in violations.values())
        for name in dict.fromkeys(name for name, _, _ in constraints)
    }
    failing = ", ".join(f"{name} fails for {n}" for name, n in counts.items() if n)
    return f"No variant meets every constraint ({len(board)} checked: {failing}), so there is no winner."


def select_winner(
    rows: pd.DataFrame,
    *,
    objective: str,
    direction: Direction,
    constraints: list[Constraint],
    metrics: list[str],
    alpha: float = 0.05,
    seed: int = 0,
) -> Selection:
    """Choose the best feasible variant on `objective`, and recommend the cheapest variant that
    is statistically tied with it.

    `objective` is a scored metric or a RUN_METRICS name. Variants are ranked by its
    `objective_score`: the per-question values of `per_question` (errors are losses), reduced
    by the mean (a percentile for latency percentiles); ties go to the lower cost per 1k
    questions, then the lower p95 latency, then the variant id. A constraint `(name, min,
    max)` names any leaderboard column; a missing (NaN) value fails it. The best variant is
    compared, paired on shared questions, with every other variant, feasible or not, and the
    p-values are Holm-adjusted together. Raises `EvaluationError` for an unknown objective,
    constraint column or direction.
    """
    _check_direction(direction)
    if objective not in RUN_METRICS and objective not in metrics and objective not in rows.columns:
        known = ", ".join([*metrics, *RUN_METRICS])
        raise EvaluationError(f"unknown objective {objective!r}; choose one of: {known}")
    names = list(dict.fromkeys([*metrics, *([] if objective in RUN_METRICS else [objective])]))
    board = leaderboard(rows, names, seed=seed)
    unknown = [name for name, _, _ in constraints if name not in board.columns]
    if unknown:
        raise EvaluationError(f"no leaderboard column {', '.join(unknown)}; columns: {', '.join(board.columns)}")
    table = per_question(rows, objective, direction)
    board["objective_score"] = [_reduce(objective, table[v].to_numpy()) for v in board["variant"]]
    violations = {v: found for v, r in board.set_index("variant").iterrows() if (found := _violations(r, constraints))}
    board["feasible"] = ~board["variant"].isin(list(violations))
    board = _sorted(board, [("objective_score", direction == "minimize"), *_CHEAP])
    board.insert(0, "rank", range(1, len(board) + 1))
    front = pareto_front(board, [("objective_score", direction), *_PARETO_COSTS])
    board["pareto"] = board["variant"].isin(front)
    feasible = [str(v) for v in board.loc[board["feasible"], "variant"]]
    candidates = board[board["feasible"] & board["objective_score"].notna()]
    if candidates.empty:
        if board.empty:
            note = "The rows hold no variant, so there is no winner."
        elif not feasible:
            note = _infeasible_note(board, constraints, violations)
        else:
            note = f"No feasible variant has a value for {objective}, so there is no winner."
        empty = pd.DataFrame(columns=_COMPARISON_COLUMNS)
        return Selection(None, None, [], feasible, violations, empty, board, note)

    best = str(candidates["variant"].iloc[0])
    others = [str(v) for v in board["variant"] if v != best]
    comparisons = _paired(table, best, others, direction, alpha, seed)
    untold = set(comparisons.loc[~comparisons["significant"].astype(bool) & (comparisons["n"] > 0), "variant"])
    tied = [v for v in feasible if v == best or v in untold]
    by_cost = _sorted(board[board["variant"].isin(tied)], [*_CHEAP, ("objective_score", direction == "minimize")])
    recommended = str(by_cost["variant"].iloc[0])
    note = _winner_note(board, objective, best, recommended, tied, alpha, len(violations))
    return Selection(best, recommended, tied, feasible, violations, comparisons, board, note)


def _winner_note(
    board: pd.DataFrame, objective: str, best: str, recommended: str, tied: list[str], alpha: float, infeasible: int
) -> str:
    figures = board.set_index("variant")
    note = f"{best} is best on {objective} ({_fmt(float(figures.at[best, 'objective_score']))}, errors as losses)"
    others = len(tied) - 1
    if not others:
        note += "; no other feasible variant is statistically tied with it, so it is recommended."
    else:
        are = "variants are" if others > 1 else "variant is"
        note += f"; {others} other {are} statistically tied with it (Holm-adjusted p>={alpha:g} or interval spans 0)"
        if recommended == best:
            note += ", and it is also the cheapest of them, so it is recommended."
        else:
            # Cheapest by cost per 1k questions, or by p95 latency when the costs are equal.
            column, unit = next(
                ((c, u) for c, u in _CHEAP_UNITS if figures.at[recommended, c] != figures.at[best, c]), _CHEAP_UNITS[-1]
            )
            note += (
                f"; the cheapest of them, {recommended}, is recommended ({_fmt(float(figures.at[recommended, column]))}"
                f" vs {_fmt(float(figures.at[best, column]))} {unit})."
            )
    if infeasible:
        note += f" {infeasible} variant{'s' if infeasible > 1 else ''} failed the constraints."
    return note


# -- pareto and pruning ------------------------------------------------------------------------


def pareto_front(board: pd.DataFrame, objectives: list[tuple[str, Direction]]) -> list[str]:
    """Variants of `board` that no other variant dominates on the (column, direction) pairs:
    at least as good on every one and better on one. NaN is the worst value. Ordered best
    first on the first objective, then by variant id. Raises `EvaluationError` for no
    objectives, a bad direction or a column not on the board."""
    if not objectives:
        raise EvaluationError("pareto_front needs at least one (metric, direction) objective")
    missing = [name for name, _ in objectives if name not in board.columns]
    if missing:
        raise EvaluationError(f"no leaderboard column {', '.join(missing)}; columns: {', '.join(board.columns)}")
    for _, direction in objectives:
        _check_direction(direction)
    oriented = np.column_stack(
        [
            np.nan_to_num(board[name].astype(float).to_numpy() * (1.0 if d == "maximize" else -1.0), nan=-np.inf)
            for name, d in objectives
        ]
    )
    # at_least[i, j]: variant i is at least as good as j on every objective.
    at_least = (oriented[:, None, :] >= oriented[None, :, :]).all(axis=-1)
    better = (oriented[:, None, :] > oriented[None, :, :]).any(axis=-1)
    dominated = (at_least & better).any(axis=0)
    front = board.loc[~dominated]
    name, direction = objectives[0]
    return [str(v) for v in _sorted(front, [(name, direction == "minimize")])["variant"]]


def prune(
    rows: pd.DataFrame,
    survivors: list[str],
    *,
    objective: str,
    direction: Direction,
    alpha: float = 0.05,
    seed: int = 0,
) -> list[str]:
    """The survivors to drop in a round of successive halving: those significantly worse than
    the current best on `objective`.

    Only questions every survivor has a value for count (so all are judged on the same
    questions); the best is the one with the best objective score on them (ties by id), and
    each other survivor is tested against it, paired, Holm-adjusted over the comparisons.
    The best is never pruned. With fewer than 5 shared questions nothing is pruned. Returned
    in the order of `survivors`.
    """
    _check_direction(direction)
    if len(survivors) < 2:
        return []
    mine = rows[rows["variant"].astype(str).isin(survivors)]
    table = per_question(mine, objective, direction).reindex(columns=survivors).dropna()
    if len(table) < _MIN_SHARED_QUESTIONS:
        return []
    scores = pd.DataFrame({"variant": survivors, "score": [_reduce(objective, table[v].to_numpy()) for v in survivors]})
    best = str(_sorted(scores, [("score", direction == "minimize")])["variant"].iloc[0])
    others = [v for v in survivors if v != best]
    comparisons = _paired(table, best, others, direction, alpha, seed)
    sign = 1.0 if direction == "maximize" else -1.0
    worse = comparisons["significant"].astype(bool) & (sign * comparisons["diff"].astype(float) < 0)
    dropped = set(comparisons.loc[worse, "variant"])
    return [v for v in survivors if v in dropped]
