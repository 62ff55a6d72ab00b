"""Turn labelled feedback into a new dataset version folder."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.errors import DatasetError, DatasetExists
from workbench.tracking._feedback_store import load_feedback

if TYPE_CHECKING:
    import pandas as pd

PROVENANCE_FILE = "provenance.json"
_CORRECTION = re.compile(r"^\s*answer\s*:\s*(?P<answer>.+?)\s*$", re.IGNORECASE | re.DOTALL)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def correction(comment: str | None) -> str | None:
    """The X of a comment of the form "answer: X", else None."""
    match = _CORRECTION.match(comment or "")
    return match.group("answer") if match else None


def feedback_to_dataset(
    duckdb_path: str | Path,
    results: pd.DataFrame | str | Path,
    source_dataset_dir: str | Path,
    out_dir: str | Path,
    *,
    name: str | None = None,
    run_id: str | None = None,
) -> Path:
    """Write the dataset folder `out_dir` (say `datasets/toy-v2`): the questions that got
    feedback; returns its path. `name`, if given, must be the folder's name.

    `results` is a run's per-question frame, or its parquet file / run folder. Feedback is
    taken from `run_id`, else from the frame's `run_id` column, else from any run; the latest
    per question wins. `corpus.jsonl` is copied; each question keeps its fields and gains a
    `feedback` field. The reference `answer` becomes: for thumbs down with a comment
    "answer: X", X; for thumbs up on a question without one, the run's answer; else unchanged.
    The folder is written to a temp folder and renamed into place; an existing folder is
    never overwritten (`DatasetExists`).
    """
    from workbench.core.dataset import load_dataset

    target = Path(out_dir)
    if name is not None and name != target.name:
        raise DatasetError(f"dataset name {name!r} differs from its folder {target}; the folder is the dataset")
    if not _NAME.match(target.name):
        raise DatasetError(f"invalid dataset name {target.name!r}: use letters, digits, '.', '_' and '-'")
    if target.exists():
        raise DatasetExists(f"{target} already exists; give the new dataset another name")
    source = load_dataset(Path(source_dataset_dir))
    frame = _results_frame(results)
    run_ids = _run_ids(frame, run_id)
    chosen = _latest_feedback(load_feedback(duckdb_path), run_ids, set(frame["question_id"].astype(str)))
    answers = {str(q): a for q, a in zip(frame["question_id"], frame.get("answer", [None] * len(frame)), strict=True)}
    raw = _raw_questions(source.path / "questions.jsonl")
    rows = [_labelled(raw[qid], fb, answers.get(qid)) for qid, fb in chosen.items() if qid in raw]
    if not rows:
        raise DatasetError(f"no feedback for questions of dataset {source.name} in runs {sorted(run_ids) or 'any'}")
    provenance = {
        "source_dataset": source.name,
        "source_path": str(source.path),
        "source_hash": source.content_hash,
        "run_ids": sorted(run_ids),
        "questions": len(rows),
        "up": sum(r["feedback"]["thumbs"] == "up" for r in rows),
        "down": sum(r["feedback"]["thumbs"] == "down" for r in rows),
    }
    return _write_atomic(target, source.path / "corpus.jsonl", rows, provenance)


# -- internals ------------------------------------------------------------------------------


def _results_frame(results: pd.DataFrame | str | Path) -> pd.DataFrame:
    from workbench.tracking.results import read_results

    frame = results if not isinstance(results, str | Path) else read_results(results)
    if "question_id" not in frame.columns:
        raise DatasetError("the results have no 'question_id' column")
    return frame


def _run_ids(frame: pd.DataFrame, run_id: str | None) -> set[str]:
    if run_id:
        return {run_id}
    if "run_id" in frame.columns:
        return {str(r) for r in frame["run_id"].dropna().unique() if str(r)}
    return set()  # results without run ids: feedback from any run on these questions


def _latest_feedback(feedback: pd.DataFrame, run_ids: set[str], question_ids: set[str]) -> dict[str, dict[str, Any]]:
    """The most recent feedback per question, among the given runs (all runs if none given)."""
    rows = feedback[feedback["question_id"].astype(str).isin(question_ids)]
    if run_ids:
        rows = rows[rows["run_id"].astype(str).isin(run_ids)]
    latest: dict[str, dict[str, Any]] = {}
    for row in rows.sort_values(["created_at", "feedback_id"]).to_dict("records"):
        latest[str(row["question_id"])] = row
    return latest


def _raw_questions(path: Path) -> dict[str, dict[str, Any]]:
    """Question rows as written (extra fields kept), by id."""
    rows: dict[str, dict[str, Any]] = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                rows[str(row["id"])] = row
    return rows


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    return text or None


def _labelled(question: dict[str, Any], feedback: dict[str, Any], run_answer: Any) -> dict[str, Any]:
    row = dict(question)
    run_answer = _text(run_answer)
    fixed = correction(feedback["comment"]) if feedback["thumbs"] == "down" else None
    reference = "dataset" if _text(row.get("answer")) else None
    if fixed:
        row["answer"], reference = fixed, "comment"
    elif feedback["thumbs"] == "up" and reference is None and run_answer:
        row["answer"], reference = run_answer, "run_answer"
    created = feedback["created_at"]
    row["feedback"] = {
        "thumbs": feedback["thumbs"],
        "comment": feedback["comment"],
        "user": feedback["user"],
        "run_id": feedback["run_id"],
        "trace_id": _text(feedback.get("trace_id")),
        "created_at": created.isoformat() if hasattr(created, "isoformat") else str(created),
        "run_answer": run_answer,
        "reference": reference,
    }
    return row


def _write_atomic(target: Path, corpus: Path, rows: list[dict[str, Any]], provenance: dict[str, Any]) -> Path:
    """Write into a temp folder beside `target`, check it loads, then rename it into place."""
    from workbench.core.dataset import load_dataset

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        shutil.copyfile(corpus, tmp / "corpus.jsonl")
        with (tmp / "questions.jsonl").open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        (tmp / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
        load_dataset(tmp)  # never publish a folder the workbench cannot read
        if target.exists():
            raise DatasetExists(f"{target} already exists; give the new dataset another name")
        try:
            os.rename(tmp, target)
        except OSError as exc:  # created meanwhile by someone else
            raise DatasetExists(f"{target} already exists; give the new dataset another name") from exc
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
        raise
    return target
