"""`score_file` keeps every input column (ids, labels, anything else) beside the scores."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from workbench.scoring_api import score_file

pytestmark = pytest.mark.integration

ROWS = [
    {
        "id": "007",
        "question": "Who bought four packages?",
        "answer": "Sky",
        "contexts": ["Sky picked up the remaining four."],
        "reference": "Sky",
        "label": "good",
        "annotator": {"name": "ana", "round": 2},
        "exact_match": "old value",
    },
    {
        "id": "008",
        "question": "When did it end?",
        "answer": "in 1990",
        "contexts": ["The monopoly ended in 2007."],
        "reference": "2007",
        "label": "bad",
        "annotator": {"name": "bo", "round": 1},
        "exact_match": "old value",
    },
]
METRICS = ["exact_match", "token_f1"]


def test_jsonl_keeps_every_input_column(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    out = tmp_path / "scored.parquet"
    scored = score_file(rows, metrics=METRICS, config="experiments/extractive.yaml", out=out)
    frame = scored.frame
    assert list(frame.columns[: len(ROWS[0])]) == list(ROWS[0])  # the file's columns first, in order
    assert frame["id"].tolist() == ["007", "008"] and frame["label"].tolist() == ["good", "bad"]
    assert frame["annotator"].tolist() == [r["annotator"] for r in ROWS]
    assert frame["exact_match"].tolist() == ["old value"] * 2  # an input column is never overwritten
    assert frame["exact_match_score"].tolist() == [1.0, 0.0] and "token_f1" in frame
    assert frame["question_id"].tolist() == ["007", "008"]  # the canonical field scoring used
    assert scored.summary.set_index("metric").loc["exact_match", "estimate"] == 0.5
    back = pd.read_parquet(out)
    assert {"id", "label", "annotator", "exact_match", "exact_match_score"} <= set(back.columns)
    assert back["label"].tolist() == ["good", "bad"]


def test_csv_keeps_ids_as_written(tmp_path: Path) -> None:
    rows = tmp_path / "rows.csv"
    with rows.open("w", newline="") as fh:
        writer = csv.DictWriter(
            fh, fieldnames=["user_input", "response", "retrieved_contexts", "reference", "row_id", "label"]
        )
        writer.writeheader()
        for r in ROWS:
            writer.writerow(
                {
                    "user_input": r["question"],
                    "response": r["answer"],
                    "retrieved_contexts": json.dumps(r["contexts"]),
                    "reference": r["reference"],
                    "row_id": r["id"],
                    "label": r["label"],
                }
            )
    frame = score_file(rows, metrics=["token_f1"], config="experiments/extractive.yaml").frame
    assert frame["row_id"].tolist() == ["007", "008"] and frame["label"].tolist() == ["good", "bad"]
    assert frame["user_input"].tolist() == frame["question"].tolist() == [r["question"] for r in ROWS]
    assert frame["token_f1"].tolist() == [1.0, 0.0]
