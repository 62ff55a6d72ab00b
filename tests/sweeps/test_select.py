from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from workbench.core.errors import EvaluationError
from workbench.sweeps._names import RUN_METRICS
from workbench.sweeps.select import leaderboard, pareto_front, per_question, prune, select_winner


def make_rows(
    variants: dict[str, dict[str, float]], *, questions: int = 30, repeats: int = 2, noise: float = 0.03, seed: int = 0
) -> pd.DataFrame:
    """A sweep's rows: every variant answers the same questions, whose difficulty they share,
    so paired tests see the variants' differences rather than the questions'.

    Each variant's spec: `shift` (added to token_f1), `cost`, `latency`, `error_every` (every
    k-th question errors, 0 for never)."""
    rng = np.random.default_rng(seed)
    difficulty = rng.uniform(0.3, 0.7, size=questions)
    out = []
    for variant, spec in variants.items():
        every = int(spec.get("error_every", 0))
        for q in range(questions):
            for r in range(repeats):
                failed = bool(every) and q % every == 0
                f1 = float(np.clip(difficulty[q] + spec.get("shift", 0.0) + rng.normal(0, noise), 0, 1))
                out.append(
                    {
                        "variant": variant,
                        "question_id": f"q{q:03d}",
                        "repeat": r,
                        "split": "search",
                        "error": "ProviderTimeout: slow" if failed else None,
                        "latency_s": spec.get("latency", 1.0) + abs(rng.normal(0, 0.05)),
                        "cost": spec.get("cost", 0.001),
                        "tokens_in": 100,
                        "tokens_out": 20,
                        "model_calls": 1,
                        "tokens": 120,
                        "cost_fresh": spec.get("cost", 0.001),
                        "cached_stages": 0,
                        "answerable": q % 5 != 0,
                        "has_evidence": q % 5 != 0,
                        "hit": q % 3 != 0,
                        "contains_gold": q % 2 == 0,
                        "abstained": q % 5 == 0,
                        "token_f1": math.nan if failed else f1,
                    }
                )
    return pd.DataFrame(out)


def test_a_clearly_better_variant_wins_and_the_others_are_significantly_worse() -> None:
    rows = make_rows({"v-good": {"shift": 0.2}, "v-mid": {}, "v-low": {"shift": -0.1}})
    sel = select_winner(rows, objective="token_f1", direction="maximize", constraints=[], metrics=["token_f1"])
    assert sel.best == sel.recommended == "v-good"
    assert sel.tied == ["v-good"]
    comp = sel.comparisons.set_index("variant")
    assert set(comp.index) == {"v-mid", "v-low"}
    assert comp["significant"].all()
    assert (comp["diff"] < 0).all() and (comp["versus"] == "v-good").all()
    assert (comp["p_holm"] >= comp["p_value"]).all()
    assert list(sel.leaderboard["variant"]) == ["v-good", "v-mid", "v-low"]
    assert list(sel.leaderboard["rank"]) == [1, 2, 3]
    assert "v-good is best on token_f1" in sel.note


def test_near_identical_variants_are_tied_and_the_cheaper_is_recommended() -> None:
    rows = make_rows(
        {"v-pricey": {"shift": 0.005, "cost": 0.004}, "v-cheap": {"cost": 0.001}, "v-bad": {"shift": -0.2}},
        noise=0.08,
    )
    sel = select_winner(rows, objective="token_f1", direction="maximize", constraints=[], metrics=["token_f1"])
    board = sel.leaderboard.set_index("variant")
    assert board.at["v-cheap", "token_f1"] < board.at["v-pricey", "token_f1"]
    assert sel.best == "v-pricey"
    assert sorted(sel.tied) == ["v-cheap", "v-pricey"]
    assert sel.recommended == "v-cheap"
    assert "v-cheap, is recommended" in sel.note
    assert board.at["v-cheap", "cost_per_1k_questions"] == pytest.approx(1.0)


def test_a_violated_constraint_excludes_the_otherwise_best_variant() -> None:
    rows = make_rows({"v-slow": {"shift": 0.2, "latency": 3.0}, "v-fast": {"latency": 0.5}})
    sel = select_winner(
        rows,
        objective="token_f1",
        direction="maximize",
        constraints=[("latency_s_p95", None, 2.0), ("token_f1", 0.1, None)],
        metrics=["token_f1"],
    )
    assert sel.best == sel.recommended == "v-fast"
    assert sel.feasible == ["v-fast"]
    assert list(sel.violations) == ["v-slow"]
    [message] = sel.violations["v-slow"]
    assert message.startswith("latency_s_p95 3.") and message.endswith(" > 2.0")
    board = sel.leaderboard.set_index("variant")
    assert not board.at["v-slow", "feasible"] and board.at["v-slow", "rank"] == 1
    # Compared all the same: it is better, which the caller should see.
    assert sel.comparisons.set_index("variant").at["v-slow", "diff"] > 0


def test_no_feasible_variant_gives_no_winner_and_says_why() -> None:
    rows = make_rows({"a": {"cost": 0.01}, "b": {"cost": 0.02}}, questions=8)
    sel = select_winner(
        rows,
        objective="token_f1",
        direction="maximize",
        constraints=[("cost_per_question", None, 0.001), ("missing_metric", 0.5, None)],
        metrics=["token_f1", "missing_metric"],
    )
    assert sel.best is None and sel.recommended is None and sel.tied == [] and sel.feasible == []
    assert sel.violations["a"] == ["cost_per_question 0.01 > 0.001", "missing_metric has no value"]
    assert "No variant meets every constraint" in sel.note and "cost_per_question fails for 2" in sel.note
    assert sel.comparisons.empty


def test_unknown_names_are_errors_not_silent_infeasibility() -> None:
    rows = make_rows({"a": {}, "b": {}}, questions=6)
    with pytest.raises(EvaluationError, match="unknown objective"):
        select_winner(rows, objective="tokn_f1", direction="maximize", constraints=[], metrics=["token_f1"])
    with pytest.raises(EvaluationError, match="no leaderboard column"):
        select_winner(
            rows, objective="token_f1", direction="maximize", constraints=[("latncy", None, 1)], metrics=["token_f1"]
        )
    with pytest.raises(EvaluationError, match="direction"):
        per_question(rows, "token_f1", "up")  # type: ignore[arg-type]


def test_errors_are_losses_in_comparisons_but_only_error_rate_on_the_leaderboard() -> None:
    # Perfect when it answers, but half its questions error: no winner that holds up.
    rows = make_rows({"v-flaky": {"shift": 1.0, "error_every": 2}, "v-steady": {"shift": 0.1}}, questions=20)
    board = leaderboard(rows, ["token_f1"]).set_index("variant")
    assert board.at["v-flaky", "error_rate"] == pytest.approx(0.5)
    assert board.at["v-flaky", "errors"] == 20 and board.at["v-flaky", "rows"] == 40
    assert board.at["v-flaky", "token_f1"] == pytest.approx(1.0)
    assert board.at["v-flaky", "token_f1_n"] == 10

    table = per_question(rows, "token_f1", "maximize")
    assert (table.loc[table.index[::2], "v-flaky"] == 0.0).all()

    sel = select_winner(rows, objective="token_f1", direction="maximize", constraints=[], metrics=["token_f1"])
    assert sel.best == "v-steady"
    flaky = sel.comparisons.set_index("variant").loc["v-flaky"]
    assert flaky["n"] == 20 and flaky["losses"] == 10 and flaky["wins"] == 10


def test_per_question_latency_takes_the_worst_for_errors_and_leaves_out_cached_rows() -> None:
    rows = pd.DataFrame(
        {
            "variant": ["a", "a", "a", "b", "b", "b"],
            "question_id": ["q1", "q2", "q3"] * 2,
            "error": [None, "boom", None, None, None, None],
            "latency_s": [1.0, 0.1, 2.0, 4.0, 3.0, 5.0],
            "cached_stages": [0, 0, 0, 0, 0, 2],
        }
    )
    table = per_question(rows, "latency_s_p95", "minimize")
    assert table.loc["q2", "a"] == 4.0  # the slowest answered row of any variant
    assert math.isnan(table.loc["q3", "b"])
    board = leaderboard(rows, []).set_index("variant")
    assert board.at["b", "latency_s_p50"] == pytest.approx(3.5)  # the uncached rows only


def test_repeats_are_averaged_per_question_so_the_interval_is_over_questions() -> None:
    rows = make_rows({"a": {}, "b": {}}, questions=10, repeats=3)
    board = leaderboard(rows, ["token_f1"]).set_index("variant")
    assert board.at["a", "questions"] == 10 and board.at["a", "rows"] == 30
    assert board.at["a", "token_f1_n"] == 10
    assert board.at["a", "token_f1_ci_low"] < board.at["a", "token_f1"] < board.at["a", "token_f1_ci_high"]
    assert per_question(rows, "token_f1", "maximize").shape == (10, 2)


def test_run_metrics_follow_their_definitions() -> None:
    rows = make_rows({"a": {"cost": 0.002}}, questions=10, repeats=1)
    board = leaderboard(rows, ["token_f1"]).iloc[0]
    assert set(RUN_METRICS) <= set(board.index)
    assert board["cost_per_1k_questions"] == pytest.approx(2.0)
    assert board["tokens_per_question"] == 120 and board["model_calls_per_question"] == 1
    # answerable: q1-4, q6-9; contains_gold on even ids; hit where q % 3 != 0.
    assert board["answer_contains_gold"] == pytest.approx(4 / 8)
    assert board["retrieval_hit_rate"] == pytest.approx(5 / 8)
    assert board["abstention_accuracy"] == 1.0


def test_missing_columns_give_nan_not_a_crash() -> None:
    rows = make_rows({"a": {}, "b": {}}, questions=6)[["variant", "question_id", "repeat", "error", "token_f1"]]
    board = leaderboard(rows, ["token_f1", "exact_match"]).set_index("variant")
    assert math.isnan(board.at["a", "exact_match"]) and board.at["a", "exact_match_n"] == 0
    for name in RUN_METRICS:
        if name != "error_rate":
            assert math.isnan(board.at["a", name]), name
    sel = select_winner(rows, objective="token_f1", direction="maximize", constraints=[], metrics=["exact_match"])
    assert sel.best in {"a", "b"} and sel.recommended is not None


def test_pareto_front_on_a_hand_made_board() -> None:
    board = pd.DataFrame(
        {
            "variant": ["v1", "v2", "v3", "v4", "v5", "v6"],
            "token_f1": [0.9, 0.8, 0.7, 0.7, math.nan, 0.9],
            "cost": [3.0, 1.0, 2.0, 0.5, 0.1, 3.0],
        }
    )
    front = pareto_front(board, [("token_f1", "maximize"), ("cost", "minimize")])
    # v3 is dominated by v2; v5's missing score is the worst, but nobody is cheaper; v1 and v6 tie.
    assert front == ["v1", "v6", "v2", "v4", "v5"]
    assert pareto_front(board, [("cost", "minimize")]) == ["v5"]
    with pytest.raises(EvaluationError):
        pareto_front(board, [("latency", "minimize")])


def test_prune_removes_a_clearly_worse_variant_and_keeps_a_tied_one() -> None:
    rows = make_rows({"v-best": {"shift": 0.01}, "v-twin": {}, "v-bad": {"shift": -0.25}}, questions=20, noise=0.08)
    dropped = prune(rows, ["v-twin", "v-bad", "v-best"], objective="token_f1", direction="maximize")
    assert dropped == ["v-bad"]
    # Too few shared questions: no evidence yet, so nobody goes.
    few = rows[rows["question_id"] < "q004"]
    assert prune(few, ["v-twin", "v-bad", "v-best"], objective="token_f1", direction="maximize") == []
    # A survivor that has not run yet shares no questions with the others.
    assert prune(rows, ["v-best", "v-bad", "v-new"], objective="token_f1", direction="maximize") == []


def test_prune_on_a_minimized_objective() -> None:
    rows = make_rows({"v-fast": {"latency": 0.5}, "v-slow": {"latency": 2.0}}, questions=10)
    assert prune(rows, ["v-fast", "v-slow"], objective="latency_s_p95", direction="minimize") == ["v-slow"]


def test_an_error_where_the_metric_does_not_apply_is_left_out_not_a_loss() -> None:
    rows = pd.DataFrame(
        {
            "variant": ["a", "a", "b", "b"],
            "question_id": ["q1", "q2", "q1", "q2"],
            "error": [None, "boom", None, None],
            "token_f1": [0.6, math.nan, 0.4, math.nan],  # q2 is unanswerable: no F1 for anyone
        }
    )
    table = per_question(rows, "token_f1", "maximize")
    assert math.isnan(table.loc["q2", "a"]) and table.loc["q1", "a"] == 0.6


def test_equal_costs_are_decided_by_latency_and_the_note_says_so() -> None:
    rows = make_rows({"v-a": {"shift": 0.005, "latency": 2.0}, "v-b": {"latency": 1.0}}, noise=0.08)
    sel = select_winner(rows, objective="token_f1", direction="maximize", constraints=[], metrics=["token_f1"])
    assert sel.best == "v-a" and sel.recommended == "v-b"
    assert "s p95 latency" in sel.note


def test_empty_rows_give_an_empty_board_and_no_winner() -> None:
    rows = make_rows({"a": {}}, questions=3).iloc[0:0]
    board = leaderboard(rows, ["token_f1"])
    assert board.empty and {"variant", "token_f1_ci_low", "latency_s_p95"} <= set(board.columns)
    sel = select_winner(rows, objective="token_f1", direction="maximize", constraints=[], metrics=["token_f1"])
    assert sel.best is None and "no variant" in sel.note
