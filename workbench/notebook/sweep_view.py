"""A sweep in a notebook: a live progress bar and leaderboard while it runs, then its Pareto
front and the questions that separate its two best variants.

>>> view = SweepView.for_sweep("experiments/sweeps/quickstart.yaml", "squad_disfl", limit=10)
>>> view                                  # shows the bar and the live leaderboard
>>> result = run_sweep(..., on_row=view.on_row)
>>> view.finish(result)                   # the final leaderboard, winner and note
>>> plot_pareto(result)
>>> separating_questions(result)

ipywidgets and matplotlib are imported on first use; without them these raise
`MissingDependency` naming the `notebook` extra.
"""

from __future__ import annotations

import html
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.core.errors import EvaluationError, MissingDependency
from workbench.sweeps._names import RUN_METRICS
from workbench.sweeps.result import SweepResult
from workbench.sweeps.select import leaderboard, pareto_front, per_question
from workbench.sweeps.spec import DEFAULT_SWEEP_METRICS, Direction, Objective

__all__ = ["SweepView", "plot_pareto", "separating_questions"]

# Row fields the live leaderboard never reads and that make up most of a row's size.
_HEAVY = ("contexts", "retrieved", "question", "answer", "gold_answer", "guards_triggered", "models")
# Run figures the live and final tables show, after the scored metrics.
_SHOWN_RUN = ("latency_s_p95", "cost_per_1k_questions", "tokens_per_question")
_WINNER_CSS = "background-color: #d4edda; font-weight: bold"
_RECOMMENDED_CSS = "background-color: #d6eaf8"


def _widgets() -> Any:
    try:
        import ipywidgets
    except ImportError as exc:
        raise MissingDependency("ipywidgets", "notebook") from exc
    return ipywidgets


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise MissingDependency("matplotlib", "notebook") from exc
    return plt


def _direction(metric: str) -> Direction:
    return Objective(metric=metric).resolved_direction


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.3g}"
    return "" if value is None else str(value)


def _html_table(frame: pd.DataFrame, row_css: Mapping[int, str] | None = None) -> str:
    """A plain HTML table (no jinja2 needed); `row_css` styles rows by position."""
    row_css = row_css or {}
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for i, values in enumerate(frame.itertuples(index=False)):
        style = f' style="{row_css[i]}"' if i in row_css else ""
        cells = "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in values)
        body.append(f"<tr{style}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _with_interval(frame: pd.DataFrame, board: pd.DataFrame, metric: str) -> None:
    low, high = board.get(f"{metric}_ci_low"), board.get(f"{metric}_ci_high")
    if low is None or high is None:
        return
    frame[f"{metric} 95% CI"] = [
        "" if math.isnan(lo) or math.isnan(hi) else f"[{lo:.3g}, {hi:.3g}]"
        for lo, hi in zip(low.astype(float), high.astype(float), strict=True)
    ]


class SweepView:
    """A live view of a running sweep: pass `view.on_row` to `run_sweep(on_row=...)`.

    It shows a progress bar (rows done of `total`, errors, model calls and tokens spent) and a
    leaderboard over every row so far (`select.leaderboard`, sorted by `objective`), recomputed
    at most every `refresh_s` seconds, or every `refresh_rows` rows when that is set. `on_row`
    is safe to call from the sweep's worker thread. `finish(result)` shows the sweep's own
    leaderboard with the winner and the recommended variant highlighted, and its note.
    """

    def __init__(
        self,
        total: int | None = None,
        *,
        metrics: Sequence[str] | None = None,
        objective: str = "token_f1",
        direction: Direction | None = None,
        labels: Mapping[str, str] | None = None,
        refresh_s: float = 1.0,
        refresh_rows: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        widgets = _widgets()
        self.metrics = list(dict.fromkeys([*(metrics or DEFAULT_SWEEP_METRICS)]))
        self.objective = objective
        self.direction: Direction = direction or _direction(objective)
        self.labels = dict(labels or {})
        self.refresh_s = refresh_s
        self.refresh_rows = refresh_rows
        self._clock = clock
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()
        self._rows: list[dict[str, Any]] = []
        self._pending = 0
        self._last_refresh = -math.inf
        self._finished = False
        self._started = clock()
        self.total = total
        self.done = 0
        self.errors = 0
        self.model_calls = 0
        self.tokens = 0
        self.dollars = 0.0
        self.board = pd.DataFrame()
        self.progress = widgets.IntProgress(value=0, min=0, max=max(total or 1, 1), description="rows")
        self.status = widgets.HTML(value=self._status_text())
        self.table = widgets.HTML(value="<i>waiting for the first row…</i>")
        self.note = widgets.HTML(value="")
        self.widget = widgets.VBox([widgets.HBox([self.progress, self.status]), self.table, self.note])

    @classmethod
    def for_sweep(
        cls, spec: str | Path, dataset: str | Path, *, root: str | Path = ".", limit: int | None = None, **options: Any
    ) -> SweepView:
        """A view sized and labelled for the sweep `run_sweep(spec, dataset, root=..., limit=...)`
        will run: its variants' labels, objective, metrics, and the rows it has left at most."""
        from workbench.sweeps.engine import plan_sweep
        from workbench.sweeps.spec import load_spec

        spec_file = Path(spec)
        if not spec_file.is_absolute() and not spec_file.exists():
            spec_file = Path(root) / spec_file  # as run_sweep resolves it
        loaded, _ = load_spec(spec_file)
        plan = plan_sweep(spec_file, dataset, root=root, limit=limit)
        options.setdefault("metrics", loaded.scored_metrics)
        options.setdefault("objective", loaded.objective.metric)
        options.setdefault("direction", loaded.objective.resolved_direction)
        options.setdefault("labels", dict(zip(plan.variants["variant"], plan.variants["label"], strict=True)))
        return cls(max(plan.total_upper_bound - plan.done, 0), **options)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # -- while the sweep runs ----------------------------------------------------------------

    def on_row(self, row: Mapping[str, Any]) -> None:
        """Count one finished row and, when the throttle allows, redraw the leaderboard."""
        with self._lock:
            if not self.done:
                self._started = self._clock()  # time the sweep, not how long the view waited
            self._rows.append({k: v for k, v in row.items() if k not in _HEAVY})
            self.done += 1
            self.errors += row.get("error") is not None
            self.model_calls += int(row.get("model_calls") or 0)
            self.tokens += int(row.get("tokens") or 0)
            self.dollars += float(row.get("cost_fresh") or 0.0)
            self._pending += 1
            now = self._clock()
            due = now - self._last_refresh >= self.refresh_s
            if self.refresh_rows is not None:
                due = due or self._pending >= self.refresh_rows
            self._show_progress()
        if due:
            self.refresh()

    def refresh(self) -> None:
        """Recompute the live leaderboard from every row so far, now."""
        if not self._refreshing.acquire(blocking=False):
            return  # another thread is redrawing; the next row or `finish` catches up
        try:
            with self._lock:
                if self._finished:
                    return  # the final leaderboard stays
                rows = pd.DataFrame(self._rows)
                self._pending = 0
                self._last_refresh = self._clock()
            if rows.empty:
                return
            board = leaderboard(rows, self.metrics)
            ascending = self.direction == "minimize"
            if self.objective in board.columns:
                board = board.sort_values(self.objective, ascending=ascending, na_position="last", kind="mergesort")
            self.board = board.reset_index(drop=True)
            self.table.value = _html_table(self._display(self.board))
        finally:
            self._refreshing.release()

    def _status_text(self) -> str:
        of = f" / {self.total}" if self.total else ""
        errors = f"{self.errors} error{'s' if self.errors != 1 else ''}"
        elapsed = self._clock() - self._started
        spent = f"{self.model_calls} model calls · {self.tokens:,} tokens"
        if self.dollars:
            spent += f" · ${self.dollars:.4f}"
        return f"{self.done}{of} rows · {errors} · {spent} · {elapsed:.0f} s"

    def _show_progress(self) -> None:
        if self.done > self.progress.max:  # a confirm split or a resumed run ran more than planned
            self.progress.max = self.done
        self.progress.value = self.done
        if self.errors:
            self.progress.bar_style = "warning"
        self.status.value = self._status_text()

    def _display(self, board: pd.DataFrame, extra: Sequence[str] = ()) -> pd.DataFrame:
        """The columns worth reading: who, how many, the objective with its interval, the rest."""
        frame = pd.DataFrame({c: board[c] for c in ("rank", "variant") if c in board.columns})
        if self.labels:
            frame["label"] = [self.labels.get(str(v), "") for v in board["variant"]]
        for name in extra:
            frame[name] = board[name]
        for name in ("questions", "errors"):
            frame[name] = board[name]
        metrics = [self.objective, *(m for m in self.metrics if m != self.objective)]
        for metric in metrics:
            if metric in board.columns:
                frame[metric] = board[metric]
                if metric == self.objective:
                    _with_interval(frame, board, metric)
        for name in _SHOWN_RUN:
            if name in board.columns and name not in frame.columns:
                frame[name] = board[name]
        return frame

    # -- once it is done -----------------------------------------------------------------------

    def finish(self, result: SweepResult) -> None:
        """Show the sweep's final leaderboard (winner and recommended highlighted) and note."""
        with self._refreshing, self._lock:
            self._finished = True
            if not result.variants.empty and "label" in result.variants:
                self.labels |= dict(zip(result.variants["variant"], result.variants["label"], strict=True))
            spent = result.spent
            self.progress.max = max(self.done, 1)
            self.progress.value = self.progress.max  # full even when every row was resumed
            self.progress.bar_style = "success" if result.status == "finished" and not self.errors else "warning"
            self.status.value = html.escape(
                f"{result.status} · {self.done} new rows ({len(result.rows)} in all) · {self.errors} errors · "
                f"{spent.model_calls} model calls · {spent.tokens:,} tokens · {spent.wall_time_s:.0f} s"
            )
            board = result.leaderboard
            if board.empty:
                self.table.value = "<i>no row finished</i>"
            else:
                self.board = board
                self.table.value = _html_table(self._final(result), self._highlights(result))
            note = f"<b>winner:</b> {html.escape(str(result.winner))}"
            if result.recommended and result.recommended != result.winner:
                note += f" · <b>recommended:</b> {html.escape(result.recommended)}"
            self.note.value = f"<p>{note}</p><p>{html.escape(result.note)}</p>"

    def _final(self, result: SweepResult) -> pd.DataFrame:
        board = result.leaderboard.copy()
        tied = set(result.tied)
        board["pick"] = [
            "winner, recommended"
            if v == result.winner == result.recommended
            else "winner"
            if v == result.winner
            else "recommended"
            if v == result.recommended
            else "tied"
            if v in tied
            else ""
            for v in board["variant"]
        ]
        extra = [c for c in ("pick", "objective_score", "feasible") if c in board.columns]
        return self._display(board, extra)

    @staticmethod
    def _highlights(result: SweepResult) -> dict[int, str]:
        css = {}
        for i, variant in enumerate(result.leaderboard["variant"]):
            if variant == result.winner:
                css[i] = _WINNER_CSS
            elif variant == result.recommended:
                css[i] = _RECOMMENDED_CSS
        return css


# -- after the sweep ---------------------------------------------------------------------------


def _objective(result: SweepResult) -> str | None:
    """The objective the winner was picked on."""
    return result.objective


def _labels(result: SweepResult) -> dict[str, str]:
    if result.variants.empty or "label" not in result.variants:
        return {}
    return dict(zip(result.variants["variant"].astype(str), result.variants["label"].astype(str), strict=True))


def plot_pareto(result: SweepResult, x: str = "latency_s_p95", y: str | None = None, *, ax: Any = None) -> Any:
    """Each variant of the final leaderboard at (`x`, `y`), labelled; the front (no variant at
    least as good on both and better on one) joined and coloured, the winner a star and the
    recommended variant ringed. `y` defaults to `objective_score` (the objective with errors
    counted as losses, what the winner was ranked on). Returns the matplotlib Axes."""
    board = result.leaderboard
    if board.empty:
        raise EvaluationError("the sweep has no leaderboard to plot (no row finished)")
    y = y or "objective_score"
    missing = [c for c in (x, y) if c not in board.columns]
    if missing:
        raise EvaluationError(f"no leaderboard column {', '.join(missing)}; columns: {', '.join(board.columns)}")
    objective = _objective(result)
    y_direction = _direction(objective) if y == "objective_score" and objective else _direction(y)
    front = pareto_front(board, [(y, y_direction), (x, _direction(x))])
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    labels = _labels(result)
    xs, ys = board[x].astype(float), board[y].astype(float)
    on_front = board["variant"].isin(front).to_numpy()
    ax.scatter(xs[~on_front], ys[~on_front], color="0.6", label="dominated")
    order = board[on_front].sort_values(x)
    ax.plot(order[x].astype(float), order[y].astype(float), "o-", color="tab:blue", label="Pareto front")
    for variant, px, py in zip(board["variant"], xs, ys, strict=True):
        if not (math.isnan(px) or math.isnan(py)):
            text = labels.get(str(variant), str(variant))
            ax.annotate(text, (px, py), textcoords="offset points", xytext=(4, 4), fontsize=7)
    picks = board.set_index("variant")
    if result.winner in picks.index:
        ax.scatter(
            [picks.at[result.winner, x]], [picks.at[result.winner, y]], marker="*", s=260, color="tab:orange",
            edgecolor="black", zorder=3, label=f"winner {result.winner}",
        )  # fmt: skip
    if result.recommended in picks.index and result.recommended != result.winner:
        ax.scatter(
            [picks.at[result.recommended, x]], [picks.at[result.recommended, y]], s=220, facecolor="none",
            edgecolor="tab:green", linewidth=2, zorder=3, label=f"recommended {result.recommended}",
        )  # fmt: skip
    y_label = f"{objective} (errors as losses)" if y == "objective_score" and objective else y
    ax.set_xlabel(f"{x} ({'lower' if _direction(x) == 'minimize' else 'higher'} is better)")
    ax.set_ylabel(y_label)
    ax.set_title(f"{result.name}: {len(front)} of {len(board)} variants on the front")
    ax.legend(fontsize=8)
    return ax


def _deciding_rows(rows: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    """The confirm split's rows when both variants ran there (the winner was picked there),
    else the search split's."""
    if "split" not in rows.columns:
        return rows
    confirm = rows[rows["split"] == "confirm"]
    if {a, b} <= set(confirm["variant"].astype(str)):
        return confirm
    return rows[rows["split"] != "confirm"]


def separating_questions(
    result: SweepResult, a: str | None = None, b: str | None = None, metric: str | None = None, n: int = 10
) -> pd.DataFrame:
    """The `n` questions where variants `a` and `b` differ most on `metric`, with the question,
    the gold answer, each one's answer and score side by side, and `diff` (a - b).

    Defaults: `a` is the winner (else the top of the leaderboard), `b` the best-ranked other
    variant, `metric` the sweep's objective. Scores are per question as the winner was picked
    (`select.per_question`: repeats averaged, an errored row a loss); an errored answer shows
    as its error. Raises `EvaluationError` with fewer than two variants or an unknown metric.
    """
    ranked = [str(v) for v in result.leaderboard.get("variant", pd.Series(dtype=str))]
    a = a or result.winner or (ranked[0] if ranked else None)
    b = b or next((v for v in ranked if v != a), None)
    if a is None or b is None or a == b:
        raise EvaluationError("separating_questions needs two different variants")
    metric = metric or _objective(result) or "token_f1"
    rows = _deciding_rows(result.rows, a, b)
    if metric not in rows.columns and metric not in RUN_METRICS:
        raise EvaluationError(f"unknown metric {metric!r}; the rows have: {', '.join(map(str, rows.columns))}")
    for variant in (a, b):
        if variant not in set(rows["variant"].astype(str)):
            raise EvaluationError(f"variant {variant!r} has no rows; variants: {', '.join(ranked)}")
    scores = per_question(rows, metric, _direction(metric))[[a, b]].dropna(how="all")
    first = rows.sort_values("repeat").drop_duplicates(["variant", "question_id"]).copy()
    first["question_id"] = first["question_id"].astype(str)
    answer = first["answer"] if "answer" in first else pd.Series(None, index=first.index, dtype=object)
    if "error" in first:
        answer = answer.where(first["error"].isna(), "error: " + first["error"].astype(str))
    first = first.assign(shown=answer).set_index(["variant", "question_id"])
    out = pd.DataFrame(index=scores.index)
    base = first.xs(a, level="variant").reindex(out.index)
    out["question"] = base["question"]
    out["gold_answer"] = base["gold_answer"]
    for variant in (a, b):
        out[f"{variant} answer"] = first.xs(variant, level="variant")["shown"].reindex(out.index)
    for variant in (a, b):
        out[f"{variant} {metric}"] = scores[variant]
    out["diff"] = scores[a] - scores[b]
    widest = out["diff"].abs().sort_values(ascending=False, na_position="last", kind="mergesort").index
    return out.loc[widest].head(n).reset_index(names="question_id")
