"""The sweep view, Pareto plot and separating questions: on synthetic rows, and on a real sweep."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from tests.sweeps.conftest import write_spec
from workbench.core.errors import EvaluationError, MissingDependency
from workbench.notebook.sweep_view import SweepView, plot_pareto, separating_questions
from workbench.sweeps import run_sweep
from workbench.sweeps.journal import Spent
from workbench.sweeps.result import SweepResult
from workbench.sweeps.select import select_winner
from workbench.testing.embedders import HashingEmbedder

# v-good answers every question right, v-mid half of them, v-bad none; v-bad is fastest.
F1 = {"v-good": [1.0] * 8, "v-mid": [1.0, 0.0] * 4, "v-bad": [0.0] * 8}
LATENCY = {"v-good": 0.9, "v-mid": 0.5, "v-bad": 0.1}
LABELS = {"v-good": "retrieval.top_k=4", "v-mid": "retrieval.top_k=2", "v-bad": "retrieval.top_k=1"}


def _row(variant: str, i: int, *, error: str | None = None) -> dict[str, Any]:
    f1 = F1[variant][i]
    return {
        "variant": variant,
        "question_id": f"q{i}",
        "repeat": 0,
        "split": "search",
        "question": f"question {i}?",
        "gold_answer": f"gold {i}",
        "answer": None if error else (f"gold {i}" if f1 else "wrong"),
        "answerable": True,
        "error": error,
        "latency_s": LATENCY[variant],
        "cost": 0.0,
        "tokens_in": 100,
        "tokens_out": 5,
        "model_calls": 0 if error else 1,
        "tokens": 0 if error else 105,
        "cost_fresh": 0.0,
        "token_f1": None if error else f1,
        "exact_match": None if error else f1,
        "contexts": ["a long context"],
    }


def _rows() -> list[dict[str, Any]]:
    return [_row(v, i) for i in range(8) for v in F1]


def _result(rows: list[dict[str, Any]]) -> SweepResult:
    frame = pd.DataFrame(rows)
    chosen = select_winner(
        frame, objective="token_f1", direction="maximize", constraints=[], metrics=["token_f1", "exact_match"]
    )
    return SweepResult(
        sweep_id="sw-test",
        name="test-sweep",
        status="finished",
        variants=pd.DataFrame({"variant": list(LABELS), "label": list(LABELS.values())}),
        rows=frame,
        leaderboard=chosen.leaderboard,
        comparisons=chosen.comparisons,
        winner=chosen.best,
        recommended=chosen.recommended,
        tied=chosen.tied,
        pareto=[],
        note=chosen.note,
        spent=Spent(questions=len(rows), model_calls=len(rows), tokens=105 * len(rows), wall_time_s=3.0),
    )


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _view(**kwargs: Any) -> SweepView:
    kwargs.setdefault("metrics", ["token_f1", "exact_match"])
    kwargs.setdefault("labels", LABELS)
    return SweepView(24, **kwargs)


def test_on_row_counts_rows_errors_and_spend() -> None:
    view = _view()
    view.on_row(_row("v-good", 0))
    view.on_row(_row("v-mid", 0, error="ProviderTimeout: slow"))
    view.on_row(_row("v-bad", 0))
    assert (view.done, view.errors, view.model_calls, view.tokens) == (3, 1, 2, 210)
    assert (view.progress.value, view.progress.max) == (3, 24)
    assert view.progress.bar_style == "warning"
    assert "3 / 24 rows" in view.status.value
    assert "1 error " in view.status.value
    assert "2 model calls" in view.status.value


def test_the_leaderboard_is_redrawn_at_most_once_a_second() -> None:
    clock = Clock()
    view = _view(clock=clock)
    view.on_row(_row("v-good", 0))  # the first row shows at once
    assert "v-good" in view.table.value
    assert "retrieval.top_k=4" in view.table.value
    view.on_row(_row("v-mid", 0))
    view.on_row(_row("v-bad", 0))
    assert "v-mid" not in view.table.value  # within the second: counted, not redrawn
    assert view.done == 3
    clock.now += 1.0
    view.on_row(_row("v-good", 1))
    assert {"v-good", "v-mid", "v-bad"} <= set(view.board["variant"])
    counts = view.board.set_index("variant")["questions"].to_dict()
    assert counts == {"v-good": 2, "v-mid": 1, "v-bad": 1}
    assert "<td>v-mid</td>" in view.table.value


def test_refresh_rows_redraws_every_n_rows_and_sorts_by_the_objective() -> None:
    view = _view(clock=Clock(), refresh_rows=3)
    rows = _rows()
    for row in rows[:5]:
        view.on_row(row)
    assert view.board["rows"].sum() == 4  # redrawn at rows 1 and 4, not yet at 5
    for row in rows[5:]:
        view.on_row(row)
    view.refresh()
    assert list(view.board["variant"]) == ["v-good", "v-mid", "v-bad"]
    assert view.board.set_index("variant")["token_f1"].to_dict() == {"v-good": 1.0, "v-mid": 0.5, "v-bad": 0.0}
    table = view.table.value
    assert table.index("v-good") < table.index("v-mid") < table.index("v-bad")
    assert "token_f1 95% CI" in table
    assert "<td>8</td>" in table  # questions per variant


def test_rows_from_many_threads_are_all_counted() -> None:
    view = _view(refresh_s=0.0)
    rows = _rows()

    def feed(part: list[dict[str, Any]]) -> None:
        for row in part:
            view.on_row(row)

    threads = [threading.Thread(target=feed, args=(rows[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    view.refresh()
    assert view.done == len(rows) == 24
    assert view.board["rows"].sum() == 24


def test_finish_shows_the_final_leaderboard_winner_and_note() -> None:
    rows = _rows()
    result = _result(rows)
    # v-mid cannot be told from v-good on 8 questions and is faster, so it is recommended.
    assert (result.winner, result.recommended, result.tied) == ("v-good", "v-mid", ["v-good", "v-mid"])
    view = _view(clock=Clock())
    for row in rows:
        view.on_row(row)
    view.finish(result)
    table = view.table.value
    assert '<tr style="background-color: #d4edda; font-weight: bold"><td>1</td><td>v-good</td>' in table
    assert '<tr style="background-color: #d6eaf8"><td>2</td><td>v-mid</td>' in table
    assert "<td>winner</td>" in table and "<td>recommended</td>" in table
    assert "objective_score" in table
    assert "<b>winner:</b> v-good · <b>recommended:</b> v-mid" in view.note.value
    assert "is best on token_f1" in view.note.value
    assert view.progress.bar_style == "success"
    assert "finished · 24 new rows (24 in all)" in view.status.value
    view.on_row(_row("v-bad", 0))  # a late row does not replace the final table
    view.refresh()
    assert view.table.value == table


def test_finish_marks_a_winner_that_is_also_recommended() -> None:
    rows = [r | {"latency_s": 0.05} if r["variant"] == "v-good" else r for r in _rows()]
    result = _result(rows)
    assert result.winner == result.recommended == "v-good"
    view = _view()
    view.finish(result)
    assert "<td>winner, recommended</td>" in view.table.value
    assert "recommended:" not in view.note.value


def test_separating_questions_puts_the_biggest_differences_first() -> None:
    result = _result(_rows())
    table = separating_questions(result)  # the winner against the runner-up, on token_f1
    assert list(table.columns) == [
        "question_id",
        "question",
        "gold_answer",
        "v-good answer",
        "v-mid answer",
        "v-good token_f1",
        "v-mid token_f1",
        "diff",
    ]
    assert list(table["question_id"]) == ["q1", "q3", "q5", "q7", "q0", "q2", "q4", "q6"]
    first = table.iloc[0]
    assert (first["v-good answer"], first["v-mid answer"], first["gold_answer"]) == ("gold 1", "wrong", "gold 1")
    assert first["diff"] == 1.0
    assert list(separating_questions(result, n=3)["question_id"]) == ["q1", "q3", "q5"]


def test_separating_questions_shows_errors_as_answers_and_scores_them_as_losses() -> None:
    rows = _rows()
    rows[0] = _row("v-good", 0, error="ProviderTimeout: slow")
    result = _result(rows)
    table = separating_questions(result, a="v-good", b="v-bad", metric="token_f1", n=8).set_index("question_id")
    assert table.at["q0", "v-good answer"] == "error: ProviderTimeout: slow"
    assert table.at["q0", "v-good token_f1"] == 0.0  # a loss
    assert table.index[-1] == "q0"  # no difference there
    with pytest.raises(EvaluationError, match="no rows"):
        separating_questions(result, a="v-good", b="v-nobody")
    with pytest.raises(EvaluationError, match="unknown metric"):
        separating_questions(result, metric="bleu")
    with pytest.raises(EvaluationError, match="two different variants"):
        separating_questions(result, a="v-good", b="v-good")


def test_plot_pareto_marks_the_front_and_the_winner() -> None:
    result = _result(_rows())
    ax = Figure().subplots()
    assert plot_pareto(result, ax=ax) is ax
    # Every variant trades quality for latency here, so all three are on the front.
    front_line = ax.get_lines()[0]
    assert list(front_line.get_xdata()) == [0.1, 0.5, 0.9]
    assert list(front_line.get_ydata()) == [0.0, 0.5, 1.0]
    assert {t.get_text() for t in ax.texts} == set(LABELS.values())
    assert ax.get_title() == "test-sweep: 3 of 3 variants on the front"
    assert ax.get_ylabel() == "token_f1 (errors as losses)"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "winner v-good" in legend
    # On quality against tokens (equal for all), only the best is on the front.
    ax = Figure().subplots()
    plot_pareto(result, x="tokens_per_question", y="token_f1", ax=ax)
    assert ax.get_title() == "test-sweep: 1 of 3 variants on the front"
    with pytest.raises(EvaluationError, match="no leaderboard column"):
        plot_pareto(result, x="nope", ax=ax)


def test_plot_pareto_draws_its_own_figure() -> None:
    import matplotlib.pyplot as plt

    ax = plot_pareto(_result(_rows()))
    try:
        assert len(ax.collections) >= 2  # dominated points and the winner's star
        assert np.isfinite(ax.get_xlim()).all()
    finally:
        plt.close(ax.figure)


def test_a_missing_ipywidgets_names_the_notebook_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    with pytest.raises(MissingDependency, match=r"workbench\[notebook\]"):
        SweepView()


@pytest.mark.slow
def test_a_real_sweep_fills_the_view(tmp_path: Path, small_dataset: Path) -> None:
    spec = write_spec(
        tmp_path,
        small_dataset / "corpus.jsonl",
        axes={"retrieval.top_k": [1, 3], "generation.model": ["extractive", "strict"]},
    )
    view = SweepView.for_sweep(spec, small_dataset, root=tmp_path, limit=6)
    assert view.total == 24
    assert view.objective == "token_f1"
    assert set(view.labels.values()) >= {"retrieval.top_k=1, generation.model=extractive"}
    result = run_sweep(
        spec, small_dataset, root=tmp_path, limit=6, tracker=None, embedder=HashingEmbedder(), on_row=view.on_row
    )
    view.finish(result)
    assert view.done == len(result.rows) == 24
    assert view.progress.value == 24
    assert f"<b>winner:</b> {result.winner}" in view.note.value
    for variant in result.variants["variant"]:
        assert f"<td>{variant}</td>" in view.table.value
    table = separating_questions(result, n=4)
    assert len(table) == 4
    assert {f"{result.winner} answer", "gold_answer", "diff"} <= set(table.columns)
    ax = plot_pareto(result, ax=Figure().subplots())
    assert len(ax.texts) == 4
