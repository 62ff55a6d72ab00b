"""Rows to score: from a JSONL, CSV or parquet file, a DuckDB log (or a folder of them), or
from a runner results frame; and the scored table written back atomically.

A file row needs `question`, `answer` and `contexts` (ragas' `user_input`, `response` and
`retrieved_contexts` are accepted too). In CSV, list columns are JSON arrays. Retrieved and
evidence spans are `"doc:start-end"` strings or `{doc_id, start, end}` objects.

A DuckDB file is a served request log (table `requests`, one file per server process) or a
runner's `results.duckdb` (table `results`); a folder means every `.duckdb` file in it, so
`score bundle/var/requests/` reads the log of every worker. Only answered requests are rows:
errors, blocks and `/v1/retrieve` calls (no answer) are left out. Feedback on a request
(`feedback` table) comes along as `feedback_thumbs` and `feedback_comment`, the latest one.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from workbench.core.config import describe_validation_error
from workbench.core.dataset import Question, json_objects
from workbench.core.errors import DatasetError, EvaluationError
from workbench.evaluation.base import ScoreInput, Span

__all__ = ["load_rows", "parse_span", "read_duckdb_rows", "rows_from_results", "write_scored", "REQUIRED"]

log = logging.getLogger(__name__)

REQUIRED = ("question", "answer", "contexts")
_ALIASES = {
    "user_input": "question",
    "response": "answer",
    "retrieved_contexts": "contexts",
    "gold_answer": "reference",
    "id": "question_id",
}
_LIST_FIELDS = ("contexts", "reference_contexts", "retrieved", "evidence")
_SPAN_FIELDS = ("retrieved", "evidence")


def parse_span(value: Any) -> Span:
    """A span from `"doc:start-end"` (the runner's format; the doc id may contain ':') or a
    mapping with doc_id, start and end."""
    if isinstance(value, Span):
        return value
    if isinstance(value, Mapping):
        return Span.model_validate(dict(value))
    doc_id, _, offsets = str(value).rpartition(":")
    start, _, end = offsets.partition("-")
    try:
        if not doc_id:
            raise ValueError
        return Span(doc_id=doc_id, start=int(start), end=int(end))
    except ValueError:
        raise ValueError(f"span {value!r} is not 'doc:start-end'") from None


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _plain(value: Any, name: str) -> Any:
    """JSON-array text (CSV) and numpy arrays or scalars (parquet, pandas) as plain Python."""
    if isinstance(value, str):
        text = value.strip()
        if name in _LIST_FIELDS:
            return json.loads(text) if text.startswith("[") else [value]
        return value
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def _to_input(raw: Mapping[str, Any], source: str) -> ScoreInput:
    data: dict[str, Any] = {}
    for key, value in sorted(raw.items(), key=lambda kv: kv[0] in _ALIASES):  # canonical names first
        name = _ALIASES.get(key, key)
        if name in data:  # the canonical column wins over its alias
            continue
        if not _missing(value) and not (isinstance(value, str) and value == "" and name in _LIST_FIELDS):
            data[name] = value
    absent = [f for f in REQUIRED if f not in data]
    if absent:
        raise DatasetError(f"{source}: missing required field(s) {', '.join(absent)}")
    try:
        for name in list(data):
            data[name] = _plain(data[name], name)
        for name in _SPAN_FIELDS:
            if name in data:
                data[name] = [parse_span(v) for v in data[name]]
        return ScoreInput.model_validate(data)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{source}: a list column is not a JSON array ({exc.msg})") from exc
    except ValidationError as exc:
        raise DatasetError(describe_validation_error(exc, source)) from exc
    except ValueError as exc:
        raise DatasetError(f"{source}: {exc}") from exc


def _jsonl(path: Path) -> Iterator[tuple[str, Mapping[str, Any]]]:
    with path.open(encoding="utf-8") as fh:
        yield from json_objects(fh, path, "a row to be a JSON object")


def _csv(path: Path) -> Iterator[tuple[str, Mapping[str, Any]]]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        for row in reader:
            # line_num is the line the record ends on (quoted cells may span lines).
            yield f"{path}:{reader.line_num}", {k: (None if v == "" else v) for k, v in row.items() if k}


def _parquet(path: Path) -> Iterator[tuple[str, Mapping[str, Any]]]:
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:
        raise DatasetError(f"{path}: not a readable parquet file ({type(exc).__name__}: {exc})") from exc
    for n, row in enumerate(frame.to_dict(orient="records"), 1):
        yield f"{path} row {n}", row


# Tables of scorable rows, in the order they are looked for: a served request log, a run's results.
LOG_TABLES = ("requests", "results")
_LOCK_RETRIES = 40


def _connect_read_only(path: Path) -> Any:
    """A read-only connection; a server process writes its file in short transactions, so a
    lock held right now is waited out briefly."""
    import time

    import duckdb

    for attempt in range(_LOCK_RETRIES):
        try:
            return duckdb.connect(str(path), read_only=True)
        except duckdb.IOException:
            if attempt == _LOCK_RETRIES - 1:
                raise
            time.sleep(0.05)
    raise AssertionError("unreachable")


def _read_log_file(path: Path) -> pd.DataFrame:
    import duckdb

    try:
        with _connect_read_only(path) as con:
            tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
            table = next((t for t in LOG_TABLES if t in tables), None)
            if table is None:
                return pd.DataFrame()
            frame: pd.DataFrame = con.execute(f'SELECT * FROM "{table}"').df()
            if "feedback" in tables and "request_id" in frame:
                feedback = con.execute(
                    "SELECT question_id AS request_id, thumbs AS feedback_thumbs, comment AS feedback_comment, "
                    "created_at AS feedback_at FROM feedback"
                ).df()
                frame.attrs["feedback"] = feedback
            return frame
    except duckdb.Error as exc:
        raise DatasetError(f"{path}: not a readable DuckDB file ({type(exc).__name__}: {exc})") from exc


def read_duckdb_rows(path: str | Path, *, answered_only: bool = True) -> pd.DataFrame:
    """The answered rows of a DuckDB log file, or of every `.duckdb` file of a folder (one per
    server process), oldest first, with the latest feedback on each request. With
    `answered_only=False`, blocked and failed requests too (drift counts guard triggers)."""
    path = Path(path)
    files = sorted(path.glob("*.duckdb")) if path.is_dir() else [path]
    frames = [_read_log_file(f) for f in files]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame()
    feedback = [f.attrs.pop("feedback") for f in frames if "feedback" in f.attrs]
    frame = pd.concat(frames, ignore_index=True)
    if answered_only:
        answered = frame["answer"].notna() if "answer" in frame else pd.Series(False, index=frame.index)
        if "error" in frame:
            answered &= frame["error"].isna()
        frame = frame[answered]
    if "created_at" in frame:
        frame = frame.sort_values("created_at", kind="stable")
    if feedback:
        latest = pd.concat(feedback).sort_values("feedback_at").drop_duplicates("request_id", keep="last")
        frame = frame.merge(latest.drop(columns="feedback_at"), on="request_id", how="left")
    if "request_id" in frame and "question_id" not in frame:
        frame = frame.assign(question_id=frame["request_id"])
    return frame.reset_index(drop=True)


def _duckdb(path: Path) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for n, row in enumerate(read_duckdb_rows(path).to_dict(orient="records"), 1):
        yield f"{path} row {n}", row


_READERS: dict[str, Callable[[Path], Iterator[tuple[str, Mapping[str, Any]]]]] = {
    ".jsonl": _jsonl,
    ".csv": _csv,
    ".parquet": _parquet,
    ".duckdb": _duckdb,
}


def _format(path: Path, formats: Iterable[str]) -> str:
    suffix = path.suffix.lower()
    if suffix not in formats:
        raise DatasetError(f"{path}: unsupported file type {suffix or '(none)'!r}; use one of: {', '.join(formats)}")
    return suffix


def load_rows(path: str | Path) -> list[ScoreInput]:
    """Every row of a JSONL, CSV, parquet or DuckDB file (or of a folder of DuckDB logs) as a
    `ScoreInput`; a bad row raises `DatasetError` naming the file and line (or row), and so
    does an empty file."""
    path = Path(path)
    reader: Callable[[Path], Iterator[tuple[str, Mapping[str, Any]]]]
    if path.is_dir():
        if not any(path.glob("*.duckdb")):
            raise DatasetError(f"{path}: a folder to score must hold .duckdb request logs; it has none")
        reader = _duckdb
    else:
        reader = _READERS[_format(path, _READERS)]
    if not path.exists():
        raise DatasetError(f"{path}: file not found")
    items = [_to_input(raw, source) for source, raw in reader(path)]
    if not items:
        raise DatasetError(f"{path}: no rows to score")
    return items


def rows_from_results(frame: pd.DataFrame, questions: Iterable[Question] = ()) -> list[ScoreInput]:
    """ScoreInputs from a runner results frame, with gold evidence from the dataset's
    `questions`. Rows whose pipeline failed (no answer) are left out: the run already counts
    them as errors."""
    by_id = {q.id: q for q in questions}
    items: list[ScoreInput] = []
    skipped = 0
    for n, row in enumerate(frame.to_dict(orient="records"), 1):
        if _missing(row.get("answer")) or (not _missing(row.get("error")) and row.get("error")):
            skipped += 1
            continue
        question = by_id.get(str(row.get("question_id")))
        raw = dict(row)
        raw.setdefault("contexts", [])
        if question is not None:
            raw["evidence"] = [e.model_dump() for e in question.evidence] or None
            raw.setdefault("answerable", question.answerable)
            if _missing(raw.get("gold_answer")):
                raw["gold_answer"] = question.answer
        items.append(_to_input(raw, f"results row {n}"))
    if skipped:
        log.info("%d result rows without an answer were not scored", skipped)
    return items


def _json_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Lists and dicts as JSON text, so a CSV keeps them readable and loadable."""

    def cell(value: Any) -> Any:
        if hasattr(value, "tolist") and not isinstance(value, str):
            value = value.tolist()
        return json.dumps(value, default=str) if isinstance(value, list | dict | tuple) else value

    return frame.apply(lambda column: column.map(cell) if column.dtype == object else column)


_WRITERS: dict[str, Callable[[pd.DataFrame, Path], None]] = {
    ".jsonl": lambda df, p: df.to_json(p, orient="records", lines=True, force_ascii=False),
    ".csv": lambda df, p: _json_cells(df).to_csv(p, index=False),
    ".parquet": lambda df, p: df.to_parquet(p, index=False),
}


def write_scored(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write `frame` as JSONL, CSV or parquet (by extension) so that `path` is either the old
    file or the complete new one."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _WRITERS:
        raise EvaluationError(
            f"{path}: unsupported output type {suffix or '(none)'!r}; use one of: {', '.join(_WRITERS)}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        _WRITERS[suffix](frame, Path(tmp_name))
        os.replace(tmp_name, path)
    except Exception as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise EvaluationError(f"{path}: could not write scores ({type(exc).__name__}: {exc})") from exc
    return path
