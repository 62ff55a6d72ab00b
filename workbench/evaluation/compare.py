"""Compare two evaluation runs question by question.

Each side is a per-question results table: a DataFrame, a results file (parquet, jsonl,
csv) or an MLflow run id read through a tracker's `load_table`. The two tables must cover
the same questions of the same dataset; the comparison is then paired: for every metric,
the mean difference `B - A` with a bootstrap interval, a sign-flip p-value, and per-question
wins, losses and ties. A *win* always means B did better, so for latency and cost (lower is
better) a win is a question where B was lower.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from workbench.core.errors import EvaluationError
from workbench.evaluation.stats import metric_values, paired_bootstrap

if TYPE_CHECKING:
    import pandas as pd

# Columns that are identifiers, inputs or bookkeeping, never a default metric.
_NOT_METRICS = frozenset(
    {
        "question_id",
        "run_id",
        "answerable",
        "has_evidence",
        "hit_rank",
        "route_score",
        "abstained",
        "blocked",
        "fallback_used",
        "tokens_in",
        "tokens_out",
    }
)
_NOT_METRIC_SUFFIXES = ("_retries", "_failed", "_variance", "_ci_low", "_ci_high")  # scoring writes `<m>__failed`
_LOWER_IS_BETTER = frozenset({"latency_s", "cost", "tokens_in", "tokens_out"})
_FILE_SUFFIXES = {".parquet", ".jsonl", ".json", ".csv"}
_SUMMARY_COLUMNS = [
    "metric",
    "mean_a",
    "mean_b",
    "diff",
    "ci_low",
    "ci_high",
    "p_value",
    "significant",
    "n",
    "wins",
    "losses",
    "ties",
    "direction",
]
_PER_QUESTION_COLUMNS = ["question_id", "question", "metric", "a", "b", "diff", "outcome"]


@runtime_checkable
class TableSource(Protocol):
    """What `compare` needs from a tracker: the per-question table logged with a run.

    A tracker may also offer `run_tags(run_id) -> dict[str, str]`; its `dataset_hash` tag
    is then checked too.
    """

    def load_table(self, run_id: str) -> pd.DataFrame: ...


@dataclass(frozen=True)
class _Side:
    label: str
    frame: pd.DataFrame
    tags: dict[str, str]


@dataclass(frozen=True)
class Comparison:
    """The paired comparison of run B against run A.

    `summary` has one row per metric; `per_question` one row per (question, metric), with
    `outcome` "win" (B better), "loss", "tie", or missing when either side has no score.
    """

    label_a: str
    label_b: str
    summary: pd.DataFrame
    per_question: pd.DataFrame
    confidence: float
    dataset: str | None = None

    def to_text(self) -> str:
        """A plain-text table for the terminal."""
        n_questions = self.per_question["question_id"].nunique()
        head = f"A: {self.label_a}\nB: {self.label_b}\n{n_questions} questions"
        if self.dataset:
            head += f" of dataset {self.dataset}"
        head += f"; diff = B - A with {self.confidence:.0%} paired bootstrap interval; win = B better"
        rows = [["metric", "A", "B", "diff", "interval", "p", "n", "win/loss/tie", ""]]
        for r in self.summary.itertuples(index=False):
            rows.append(
                [
                    f"{r.metric} ({r.direction})",
                    _num(r.mean_a),
                    _num(r.mean_b),
                    _num(r.diff, signed=True),
                    f"[{_num(r.ci_low, signed=True)}, {_num(r.ci_high, signed=True)}]",
                    _num(r.p_value, digits=3),
                    str(r.n),
                    f"{r.wins}/{r.losses}/{r.ties}",
                    "*" if r.significant else "",
                ]
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
        return "\n".join([head, "", *lines, "", "* significant: interval excludes 0 and p below the threshold"])


def _num(value: Any, *, digits: int = 4, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:+.{digits}g}" if signed else f"{value:.{digits}g}"


# -- loading ---------------------------------------------------------------------------------


def _read_file(path: Path) -> pd.DataFrame:
    import pandas as pd

    if path.is_dir():
        path = path / "results.parquet"
    if not path.is_file():
        raise EvaluationError(f"{path}: no results file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix in (".jsonl", ".json"):
            return pd.read_json(path, lines=suffix == ".jsonl", dtype={"question_id": str})
        if suffix == ".csv":
            return pd.read_csv(path, dtype={"question_id": str})
    except Exception as exc:
        raise EvaluationError(f"{path}: cannot read results ({type(exc).__name__}: {exc})") from exc
    raise EvaluationError(f"{path}: unsupported results file; use .parquet, .jsonl or .csv")


def _run_tags(tracker: Any, run_id: str) -> dict[str, str]:
    """The run's tags if the tracker can tell them; {} when it cannot."""
    run_tags = getattr(tracker, "run_tags", None)
    return dict(run_tags(run_id)) if callable(run_tags) else {}


def _load(run: Any, tracker: TableSource | None, label: str) -> tuple[_Side, TableSource | None]:
    import pandas as pd

    if isinstance(run, pd.DataFrame):
        return _Side(label, run, {}), tracker
    if isinstance(run, Path):
        return _Side(str(run), _read_file(run), {}), tracker
    if not isinstance(run, str) or not run:
        raise EvaluationError(f"run {label} must be a DataFrame, a results file or a run id, not {type(run).__name__}")
    path = Path(run).expanduser()
    if path.exists() or path.suffix.lower() in _FILE_SUFFIXES:
        return _Side(run, _read_file(path), {}), tracker
    if tracker is None:
        # Evaluation does not reach sideways into tracking: the caller (CLI, session) passes one.
        raise EvaluationError(f"{run!r} is not a results file; to compare MLflow run ids, pass tracker=")
    frame = tracker.load_table(run)
    return _Side(run, frame, _run_tags(tracker, run)), tracker


# -- checks ----------------------------------------------------------------------------------


def _question_ids(side: _Side) -> pd.Series:
    if "question_id" not in side.frame.columns:
        raise EvaluationError(f"run {side.label} has no question_id column")
    ids = side.frame["question_id"].astype(str)
    duplicated = ids[ids.duplicated()].unique()
    if len(duplicated):
        raise EvaluationError(f"run {side.label} has {len(duplicated)} repeated question_id(s), e.g. {duplicated[0]!r}")
    return ids


def _dataset_value(side: _Side, key: str) -> str | None:
    if side.tags.get(key):
        return str(side.tags[key])
    if key in side.frame.columns:
        values = {str(v) for v in side.frame[key].dropna().unique()}
        if len(values) > 1:
            raise EvaluationError(f"run {side.label} mixes {len(values)} values of {key}: {', '.join(sorted(values))}")
        if values:
            return values.pop()
    return None


def _check_dataset(a: _Side, b: _Side) -> str | None:
    """Refuse runs on different datasets; returns the dataset both used, when known.

    The content hash decides when both sides know it; the dataset name otherwise.
    """
    hash_a, hash_b = _dataset_value(a, "dataset_hash"), _dataset_value(b, "dataset_hash")
    name_a, name_b = _dataset_value(a, "dataset"), _dataset_value(b, "dataset")
    if hash_a is not None and hash_b is not None:
        if hash_a != hash_b:
            raise EvaluationError(f"runs use different datasets: dataset_hash {hash_a} in A, {hash_b} in B")
        name = name_a or name_b
        return f"{name} ({hash_a})" if name else hash_a
    if name_a is not None and name_b is not None and name_a != name_b:
        raise EvaluationError(f"runs use different datasets: {name_a} in A, {name_b} in B")
    return name_a or name_b


def _check_questions(ids_a: pd.Series, ids_b: pd.Series) -> None:
    only_a = set(ids_a) - set(ids_b)
    only_b = set(ids_b) - set(ids_a)
    if only_a or only_b:
        raise EvaluationError(f"runs cover different questions: {len(only_a)} only in A, {len(only_b)} only in B")


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


def _is_default_metric(name: str) -> bool:
    return not (name in _NOT_METRICS or name.startswith("t_") or name.endswith(_NOT_METRIC_SUFFIXES))


def _choose_metrics(a: pd.DataFrame, b: pd.DataFrame, metrics: list[str] | None) -> list[str]:
    in_b = set(_numeric_columns(b))
    shared = [c for c in _numeric_columns(a) if c in in_b and c != "question_id"]
    if metrics is None:
        chosen = [c for c in shared if _is_default_metric(c)]
        if not chosen:
            raise EvaluationError(f"the runs share no metric columns; numeric columns: {', '.join(shared) or 'none'}")
        return chosen
    unknown = [m for m in metrics if m not in shared]
    if unknown:
        raise EvaluationError(f"unknown metric {', '.join(unknown)}; available: {', '.join(shared) or 'none'}")
    return list(dict.fromkeys(metrics))


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of `metric` is the better one (latency, cost, timings: no)."""
    return not (metric in _LOWER_IS_BETTER or metric.startswith("t_") or metric.startswith("cost"))


def _outcomes(diff: np.ndarray, higher: bool) -> np.ndarray:
    """ "win" where B is better, "loss" where worse, "tie" where equal, None where unscored."""
    signed = diff if higher else -diff
    out = np.full(len(diff), None, dtype=object)
    out[signed > 0] = "win"
    out[signed < 0] = "loss"
    out[signed == 0] = "tie"
    return out


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
    """Compare run B against run A on the questions both answered.

    `a` and `b` are each a results DataFrame, a results file (.parquet, .jsonl, .csv, or a
    run folder holding results.parquet) or a run id read with `tracker.load_table` (an
    a tracker must be given for run ids).

    `metrics` defaults to the numeric columns both tables share, without identifiers,
    per-stage timings (`t_*`) and token counts; name any shared column to include it.
    Failed questions (non-empty `error`) and missing scores are left out pair by pair.

    Raises `EvaluationError` when the runs cover different questions or datasets, or a
    requested metric is not in both tables.
    """
    import pandas as pd

    side_a, tracker = _load(a, tracker, "A")
    side_b, tracker = _load(b, tracker, "B")
    dataset = _check_dataset(side_a, side_b)
    ids_a, ids_b = _question_ids(side_a), _question_ids(side_b)
    _check_questions(ids_a, ids_b)
    chosen = _choose_metrics(side_a.frame, side_b.frame, metrics)

    fa = side_a.frame.set_axis(ids_a.to_numpy(), axis=0)
    fb = side_b.frame.set_axis(ids_b.to_numpy(), axis=0).reindex(fa.index)
    failed = _failed(fa) | _failed(fb)
    question = _question_text(fa, fb)

    summary_rows: list[dict[str, Any]] = []
    per_question: list[pd.DataFrame] = []
    for metric in chosen:
        va, vb = metric_values(fa[metric]), metric_values(fb[metric])
        va[failed], vb[failed] = np.nan, np.nan
        diff = vb - va
        higher = higher_is_better(metric)
        outcome = _outcomes(diff, higher)
        paired = ~np.isnan(diff)
        test = paired_bootstrap(va, vb, n_resamples=n_resamples, confidence=confidence, seed=seed)
        summary_rows.append(
            {
                "metric": metric,
                "mean_a": float(va[paired].mean()) if paired.any() else math.nan,
                "mean_b": float(vb[paired].mean()) if paired.any() else math.nan,
                "diff": test.mean_diff,
                "ci_low": test.low,
                "ci_high": test.high,
                "p_value": test.p_value,
                "significant": test.significant,
                "n": test.n,
                "wins": int(np.sum(outcome == "win")),
                "losses": int(np.sum(outcome == "loss")),
                "ties": int(np.sum(outcome == "tie")),
                "direction": "higher" if higher else "lower",
            }
        )
        per_question.append(
            pd.DataFrame(
                {
                    "question_id": fa.index.to_numpy(),
                    "question": question,
                    "metric": metric,
                    "a": va,
                    "b": vb,
                    "diff": diff,
                    "outcome": outcome,
                }
            )
        )
    return Comparison(
        label_a=side_a.label,
        label_b=side_b.label,
        summary=pd.DataFrame(summary_rows, columns=_SUMMARY_COLUMNS),
        per_question=pd.concat(per_question, ignore_index=True)[_PER_QUESTION_COLUMNS],
        confidence=confidence,
        dataset=dataset,
    )


def _failed(frame: pd.DataFrame) -> np.ndarray:
    if "error" not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    return frame["error"].notna().to_numpy()


def _question_text(fa: pd.DataFrame, fb: pd.DataFrame) -> np.ndarray:
    if "question" in fa.columns:
        return fa["question"].to_numpy(dtype=object)
    if "question" in fb.columns:
        return fb["question"].to_numpy(dtype=object)
    return np.full(len(fa), None, dtype=object)
