"""Loading the two runs `compare` pairs, the checks that they cover the same questions of the
same dataset, and which of their rows errored or were served from the stage cache."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from workbench.core.errors import EvaluationError
from workbench.evaluation.stats import metric_values

if TYPE_CHECKING:
    import pandas as pd

_FILE_SUFFIXES = {".parquet", ".jsonl", ".json", ".csv"}


@runtime_checkable
class TableSource(Protocol):
    """What `compare` needs from a tracker: the per-question table logged with a run.

    A tracker may also offer `run_tags(run_id) -> dict[str, str]`; its `dataset_hash` tag
    is then checked too.
    """

    def load_table(self, run_id: str) -> pd.DataFrame: ...


@dataclass(frozen=True)
class Side:
    label: str
    frame: pd.DataFrame
    tags: dict[str, str]


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


def load_side(run: Any, tracker: TableSource | None, label: str) -> tuple[Side, TableSource | None]:
    import pandas as pd

    if isinstance(run, pd.DataFrame):
        return Side(label, run, {}), tracker
    if isinstance(run, Path):
        return Side(str(run), _read_file(run), {}), tracker
    if not isinstance(run, str) or not run:
        raise EvaluationError(f"run {label} must be a DataFrame, a results file or a run id, not {type(run).__name__}")
    path = Path(run).expanduser()
    if path.exists() or path.suffix.lower() in _FILE_SUFFIXES:
        return Side(run, _read_file(path), {}), tracker
    if tracker is None:
        # Evaluation does not reach sideways into tracking: the caller (CLI, session) passes one.
        raise EvaluationError(f"{run!r} is not a results file; to compare MLflow run ids, pass tracker=")
    frame = tracker.load_table(run)
    return Side(run, frame, _run_tags(tracker, run)), tracker


# -- checks ----------------------------------------------------------------------------------


def question_ids(side: Side) -> pd.Series:
    if "question_id" not in side.frame.columns:
        raise EvaluationError(f"run {side.label} has no question_id column")
    ids = side.frame["question_id"].astype(str)
    duplicated = ids[ids.duplicated()].unique()
    if len(duplicated):
        raise EvaluationError(f"run {side.label} has {len(duplicated)} repeated question_id(s), e.g. {duplicated[0]!r}")
    return ids


def _dataset_value(side: Side, key: str) -> str | None:
    if side.tags.get(key):
        return str(side.tags[key])
    if key in side.frame.columns:
        values = {str(v) for v in side.frame[key].dropna().unique()}
        if len(values) > 1:
            raise EvaluationError(f"run {side.label} mixes {len(values)} values of {key}: {', '.join(sorted(values))}")
        if values:
            return values.pop()
    return None


def check_dataset(a: Side, b: Side) -> str | None:
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


def check_questions(ids_a: pd.Series, ids_b: pd.Series) -> None:
    only_a = set(ids_a) - set(ids_b)
    only_b = set(ids_b) - set(ids_a)
    if only_a or only_b:
        raise EvaluationError(f"runs cover different questions: {len(only_a)} only in A, {len(only_b)} only in B")


# -- rows ------------------------------------------------------------------------------------


def _missing(value: Any) -> bool:
    import pandas as pd

    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def errored(frame: pd.DataFrame) -> np.ndarray:
    """Questions that produced no answer: the runner recorded an error, or the answer is missing."""
    out = np.zeros(len(frame), dtype=bool)
    if "error" in frame.columns:
        out |= np.array([not _missing(v) and str(v).strip() != "" for v in frame["error"]], dtype=bool)
    if "answer" in frame.columns:
        out |= np.array([_missing(v) for v in frame["answer"]], dtype=bool)
    return out


def cache_served(frame: pd.DataFrame) -> np.ndarray:
    """Questions where some stage was served from the stage cache, so their timings are not the pipeline's."""
    if "cached_stages" not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    return np.nan_to_num(metric_values(frame["cached_stages"]), nan=0.0) > 0
