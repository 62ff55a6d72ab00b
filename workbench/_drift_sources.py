"""What `drift` compares: a run's results, a dataset's questions or a served request log, read
into one frame shape.

- a folder with `questions.jsonl`, or a dataset name under `datasets/`: the questions only;
- a folder of `.duckdb` files (a bundle's `var/requests/`) or one `.duckdb` file: the request
  log (or a run's `results.duckdb`), read by the reader `score` uses, blocked and failed
  requests included since guard triggers are part of what drifts;
- a `.parquet` file: a run's results (`results/<config>/<run>.parquet`);
- a `.jsonl` file: rows with a `question` field.

The frame has `question` and `question_chars`, and where the source has them `route`,
`guards` (the set of checks that triggered, from `verdicts`), the outcome flags and the
numeric metrics.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.core.dataset import json_objects
from workbench.core.errors import DatasetError

# Yes/no outcomes compared as shares, where both sides have them.
OUTCOMES = ("blocked", "abstained", "fallback_used", "hit", "contains_gold")
# Numeric columns that describe the request's plumbing rather than its traffic or quality.
NOT_METRICS = frozenset({"pid", "status", "cached_stages", "hit_rank", "feedback_thumbs"})
# A runner writes this instead of a question it never masked; it is no query to compare.
_WITHHELD = "<withheld:"


@dataclass
class Source:
    label: str
    kind: str  # dataset, request_log, run
    frame: pd.DataFrame
    has_guards: bool

    def metrics(self) -> list[str]:
        """Numeric, non-boolean columns that read as metrics (per-stage timings `t_*` too)."""
        frame = self.frame
        names = []
        for column in frame.columns:
            if column in NOT_METRICS or column in OUTCOMES:
                continue
            series = frame[column]
            if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
                continue
            if series.notna().any():
                names.append(str(column))
        return names


def parse_duration(text: str) -> timedelta:
    """`90m`, `24h`, `7d` (or a number of seconds) as a timedelta."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    raw = text.strip().lower()
    try:
        seconds = float(raw[:-1]) * units[raw[-1]] if raw and raw[-1] in units else float(raw)
    except ValueError:
        raise DatasetError(f"{text!r} is not a duration; use e.g. 90m, 24h or 7d") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise DatasetError(f"{text!r} is not a positive duration")
    return timedelta(seconds=seconds)


def _triggered(cell: Any) -> set[str] | None:
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return None
    try:
        verdicts = json.loads(cell) if isinstance(cell, str) else cell
        return {str(v["check"]) for v in verdicts if v.get("triggered")}
    except (TypeError, ValueError, KeyError, AttributeError):
        return None


def _normalise(frame: pd.DataFrame, label: str) -> tuple[pd.DataFrame, bool]:
    if "question" not in frame.columns:
        raise DatasetError(f"{label}: no 'question' column to compare")
    keep = frame["question"].map(lambda q: isinstance(q, str) and bool(q.strip()) and not q.startswith(_WITHHELD))
    frame = frame.loc[keep.astype(bool)].reset_index(drop=True).copy()
    frame["question_chars"] = frame["question"].str.len().astype(float)
    has_guards = "verdicts" in frame.columns
    if has_guards:
        frame["guards"] = frame["verdicts"].map(_triggered)
        has_guards = bool(frame["guards"].notna().any())
    return frame, has_guards


def _read_questions_jsonl(path: Path) -> pd.DataFrame:
    expected = "a JSON object with a 'question' string"
    rows = []
    with path.open(encoding="utf-8") as fh:
        for where, row in json_objects(fh, path, expected):
            if not isinstance(row.get("question"), str):
                raise DatasetError(f"{where}: expected {expected}")
            rows.append(row)
    return pd.DataFrame.from_records(rows)


def _window(frame: pd.DataFrame, label: str, since: timedelta | None, until: timedelta | None) -> pd.DataFrame:
    if since is None and until is None:
        return frame
    if "created_at" not in frame.columns:
        raise DatasetError(f"{label}: --since/--reference-until need a request log (rows with times)")
    now = datetime.now(UTC).replace(tzinfo=None)  # the log stores naive UTC
    created = pd.to_datetime(frame["created_at"])
    keep = pd.Series(True, index=frame.index)
    if since is not None:
        keep &= created >= now - since
    if until is not None:
        keep &= created < now - until
    return frame.loc[keep].reset_index(drop=True)


def load_source(
    spec: str, *, since: timedelta | None = None, until: timedelta | None = None, base: Path = Path(".")
) -> Source:
    """Read REFERENCE or CURRENT (see the module docstring); `since` keeps a request log's last
    stretch, `until` its rows older than that. A source that is not there, cannot be read or
    has no question left is a `DatasetError`."""
    from workbench.core.dataset import DATASETS_DIR
    from workbench.evaluation.rows import read_duckdb_rows

    path = base / Path(spec).expanduser()
    named = base / DATASETS_DIR / spec
    if not path.exists() and named.is_dir() and not Path(spec).is_absolute():
        path = named
    if path.is_dir() and (path / "questions.jsonl").is_file():
        kind, frame = "dataset", _read_questions_jsonl(path / "questions.jsonl")
    elif (path.is_dir() and any(path.glob("*.duckdb"))) or (path.is_file() and path.suffix.lower() == ".duckdb"):
        kind, frame = "request_log", read_duckdb_rows(path, answered_only=False)
    elif path.is_file() and path.suffix.lower() == ".parquet":
        try:
            kind, frame = "run", pd.read_parquet(path)
        except Exception as exc:
            raise DatasetError(f"{spec}: not a readable parquet file ({type(exc).__name__})") from exc
    elif path.is_file() and path.suffix.lower() == ".jsonl":
        kind, frame = "run", _read_questions_jsonl(path)
    elif path.exists():
        raise DatasetError(f"{spec}: not a dataset folder, request-log folder, .duckdb, .parquet or .jsonl file")
    else:
        raise DatasetError(f"{spec}: no such file, folder or dataset")
    frame = _window(frame, spec, since, until)
    frame, has_guards = _normalise(frame, spec)
    if frame.empty:
        raise DatasetError(f"{spec}: no questions to compare" + (" in that time window" if since or until else ""))
    return Source(label=spec, kind=kind, frame=frame, has_guards=has_guards)
