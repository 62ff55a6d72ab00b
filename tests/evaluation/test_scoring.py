"""The single scoring path, the rows loader and the scored-table writer."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest

from workbench.core.dataset import EvidenceSpan, Question
from workbench.core.errors import DatasetError, EvaluationError
from workbench.evaluation.base import MetricResult, ScoreInput, Span
from workbench.evaluation.metrics import build_metrics
from workbench.evaluation.rows import load_rows, parse_span, rows_from_results, write_scored
from workbench.evaluation.scoring import ScoreReport, score, score_sync


class Length:
    name, kind, requires = "length", "offline", ("answer",)

    async def ascore(self, item: ScoreInput) -> MetricResult:
        return MetricResult(value=float(len(item.answer)))


class Explodes:
    """Raises on answers containing 'boom', reports a parse failure on 'bad'."""

    name, kind, requires = "fragile", "offline", ("answer",)

    async def ascore(self, item: ScoreInput) -> MetricResult:
        if "boom" in item.answer:
            raise RuntimeError("judge crashed")
        if "bad" in item.answer:
            return MetricResult(value=None, failed=True, error="unparseable verdict")
        if "nan" in item.answer:
            return MetricResult(value=math.nan)
        return MetricResult(value=1.0)


class FakeJudged:
    name, kind = "fake_faithfulness", "judge"
    requires: ClassVar[tuple[str, ...]] = ("answer", "contexts")

    async def ascore(self, item: ScoreInput) -> MetricResult:
        return MetricResult(value=0.5, judge="smollm2 (weak judge)", prompt_version="v7")


def item(qid: str, answer: str, **kw: object) -> ScoreInput:
    return ScoreInput.model_validate({"question_id": qid, "question": "q", "answer": answer, "contexts": ["c"]} | kw)


ITEMS = [item("a", "fine"), item("b", "boom"), item("c", "bad"), item("d", "nan"), item("e", "ok", reference="ok")]


def test_one_failing_metric_loses_no_other_score() -> None:
    report = asyncio.run(score(ITEMS, [Length(), Explodes(), *build_metrics(["exact_match"])]))
    frame = report.frame.set_index("question_id")
    assert frame["length"].tolist() == [4.0, 4.0, 3.0, 3.0, 2.0]
    assert report.failures == {"length": 0, "fragile": 3, "exact_match": 0}
    assert frame["fragile__failed"].tolist() == [False, True, True, True, False]
    assert frame.loc["b", "fragile__error"] == "RuntimeError: judge crashed"
    assert frame.loc["c", "fragile__error"] == "unparseable verdict"
    assert frame.loc["d", "fragile__error"] == "metric returned NaN"
    assert "length__failed" not in frame  # columns only where failures exist
    # exact_match needs a reference: only row e applies
    assert report.not_applicable == {"length": 0, "fragile": 0, "exact_match": 4}
    assert report.scored() == {"length": 5, "fragile": 2, "exact_match": 1}
    assert report.aggregates() == {"length": pytest.approx(3.2), "fragile": 1.0, "exact_match": 1.0}


def test_metric_scoring_no_row_is_left_out_of_aggregates() -> None:
    report = asyncio.run(score([item("a", "boom")], [Explodes()]))
    assert report.aggregates() == {}
    assert report.failures == {"fragile": 1}


def test_judge_info_names_judge_prompt_and_weakness() -> None:
    report = asyncio.run(score(ITEMS[:2], [FakeJudged(), Length()]))
    assert report.judge_info == {"fake_faithfulness": {"judge": "smollm2", "prompt_version": "v7", "weak": True}}


def test_rows_keep_input_order_and_ids_default_to_position() -> None:
    items = [ScoreInput(question="q", answer="x" * n, contexts=[]) for n in range(30)]
    report = asyncio.run(score(items, [Length()], concurrency=3))
    assert report.frame["question_id"].tolist() == [str(n) for n in range(30)]
    assert report.frame["length"].tolist() == [float(n) for n in range(30)]


def test_duplicate_metric_names_are_refused() -> None:
    with pytest.raises(EvaluationError, match="repeated: length"):
        asyncio.run(score(ITEMS, [Length(), Length()]))


def test_score_sync_works_inside_a_running_loop() -> None:
    async def notebook_cell() -> ScoreReport:
        return score_sync(ITEMS[:1], [Length()])  # as in Jupyter: a loop is already running

    assert asyncio.run(notebook_cell()).aggregates() == {"length": 4.0}
    assert score_sync(ITEMS[:1], [Length()]).aggregates() == {"length": 4.0}


# ---- rows ---------------------------------------------------------------------------------

ROWS = [
    {
        "id": "q1",
        "question": "Who designed it?",
        "answer": "Gustave Eiffel",
        "contexts": ["Designed by Gustave Eiffel."],
        "reference": "Gustave Eiffel",
        "retrieved": ["doc:a:0-27"],
        "evidence": [{"doc_id": "doc:a", "start": 12, "end": 26}],
        "answerable": True,
    },
    {
        "id": "q2",
        "user_input": "When?",
        "response": "1889",
        "retrieved_contexts": ["It opened in 1889.", "In Paris."],
        "reference": "in 1889",
    },
]


def write(path: Path, rows: list[dict]) -> Path:
    suffix = path.suffix
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif suffix == ".csv":
        frame = pd.DataFrame(rows)
        for col in ("contexts", "retrieved", "evidence", "retrieved_contexts"):
            if col in frame:
                frame[col] = frame[col].map(lambda v: json.dumps(v) if isinstance(v, list) else v)
        frame.to_csv(path, index=False)
    else:
        pd.DataFrame(rows).to_parquet(path)
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_rows_round_trip_through_scoring(tmp_path: Path, suffix: str) -> None:
    items = load_rows(write(tmp_path / f"rows{suffix}", ROWS))
    assert [i.question_id for i in items] == ["q1", "q2"]
    assert items[0].retrieved == [Span(doc_id="doc:a", start=0, end=27)]
    assert items[0].evidence == [Span(doc_id="doc:a", start=12, end=26)]
    assert items[1].question == "When?" and items[1].contexts == ["It opened in 1889.", "In Paris."]
    report = asyncio.run(score(items, build_metrics(["hit_at_k", "exact_match", "token_f1", "claim_support"])))
    out = write_scored(report.frame, tmp_path / f"scored{suffix}")
    assert load_back(out).set_index("question_id")["exact_match"].to_dict() == {"q1": 1.0, "q2": 0.0}
    hits = report.frame.set_index("question_id")["hit_at_k"]
    assert hits["q1"] == 1.0 and math.isnan(hits["q2"])  # q2 has no spans: not applicable
    assert report.not_applicable["hit_at_k"] == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def load_back(path: Path) -> pd.DataFrame:
    readers = {
        ".jsonl": lambda p: pd.read_json(p, lines=True, dtype={"question_id": str}),
        ".csv": lambda p: pd.read_csv(p, dtype={"question_id": str}),
        ".parquet": pd.read_parquet,
    }
    return readers[path.suffix](path)


@pytest.mark.parametrize(
    ("suffix", "where"),
    [(".jsonl", r"rows\.jsonl:3:"), (".csv", r"rows\.csv:4:"), (".parquet", r"rows\.parquet row 3:")],
)
def test_missing_required_field_names_file_and_line(tmp_path: Path, suffix: str, where: str) -> None:
    rows = [*ROWS, {"question": "no answer here", "contexts": ["x"]}]
    with pytest.raises(DatasetError, match=where + r" missing required field\(s\) answer$"):
        load_rows(write(tmp_path / f"rows{suffix}", rows))


def test_empty_and_malformed_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DatasetError, match="empty.jsonl: no rows"):
        load_rows(empty)
    (tmp_path / "empty.csv").write_text("question,answer,contexts\n")
    with pytest.raises(DatasetError, match="no rows"):
        load_rows(tmp_path / "empty.csv")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(ROWS[0]) + "\n{not json\n")
    with pytest.raises(DatasetError, match=r"bad.jsonl:2: not valid JSON"):
        load_rows(bad)
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text(json.dumps({**ROWS[0], "retrieved": ["nocolon"]}) + "\n")
    with pytest.raises(DatasetError, match=r"wrong.jsonl:1: span 'nocolon' is not 'doc:start-end'"):
        load_rows(wrong)
    with pytest.raises(DatasetError, match="unsupported file type '.txt'"):
        load_rows(tmp_path / "rows.txt")
    with pytest.raises(DatasetError, match="file not found"):
        load_rows(tmp_path / "missing.parquet")


def test_parse_span_allows_colons_in_doc_ids() -> None:
    assert parse_span("wiki:Paris:10-20") == Span(doc_id="wiki:Paris", start=10, end=20)


def test_rows_from_results_joins_gold_evidence(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        [
            {
                "question_id": "q1",
                "question": "Who?",
                "answer": "Eiffel",
                "contexts": ["By Eiffel."],
                "retrieved": ["d1:0-10", "d2:5-9"],
                "gold_answer": "Gustave Eiffel",
                "answerable": True,
                "abstained": False,
                "error": None,
            },
            {
                "question_id": "q2",
                "question": "Why?",
                "answer": None,
                "contexts": None,
                "retrieved": None,
                "gold_answer": None,
                "answerable": False,
                "abstained": False,
                "error": "ProviderTimeout: slow",
            },
            {
                "question_id": "q3",
                "question": "When?",
                "answer": "I don't know",
                "contexts": [],
                "retrieved": [],
                "gold_answer": None,
                "answerable": False,
                "abstained": True,
                "error": None,
            },
        ]
    )
    frame = pd.read_parquet(write_scored(frame, tmp_path / "results.parquet"))  # as the runner stores it
    questions = [
        Question(
            id="q1", question="Who?", answer="Gustave Eiffel", evidence=[EvidenceSpan(doc_id="d2", start=0, end=6)]
        ),
        Question(id="q3", question="When?", answerable=False),
    ]
    items = rows_from_results(frame, questions)
    assert [i.question_id for i in items] == ["q1", "q3"]
    first = items[0]
    assert first.retrieved == [Span(doc_id="d1", start=0, end=10), Span(doc_id="d2", start=5, end=9)]
    assert first.evidence == [Span(doc_id="d2", start=0, end=6)] and first.reference == "Gustave Eiffel"
    assert items[1].evidence is None and items[1].abstained is True
    report = asyncio.run(score(items, build_metrics(["mrr", "token_f1", "abstention"])))
    assert report.frame.set_index("question_id").loc["q1", ["mrr", "token_f1"]].tolist() == [0.5, pytest.approx(2 / 3)]
    assert report.aggregates()["abstention"] == 1.0


def test_write_scored_refuses_unknown_types(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="unsupported output type '.xlsx'"):
        write_scored(pd.DataFrame({"a": [1]}), tmp_path / "out.xlsx")
