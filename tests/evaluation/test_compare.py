from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from workbench.core.errors import EvaluationError, TrackingError
from workbench.evaluation.compare import Comparison, compare
from workbench.testing.tracker import InMemoryTracker


class TableTracker(InMemoryTracker):
    """An in-memory tracker that can also hand back a run's table and tags, as MLflow does."""

    def _run(self, run_id: str):  # type: ignore[no-untyped-def]
        for run in self.runs:
            if run.run_id == run_id:
                return run
        raise TrackingError(f"no run {run_id}")

    def load_table(self, run_id: str) -> pd.DataFrame:
        return self._run(run_id).table.copy()

    def run_tags(self, run_id: str) -> dict[str, str]:
        return dict(self._run(run_id).tags)

    def log(self, table: pd.DataFrame, **tags: str) -> str:
        return self.log_run(experiment="e", run_name="r", config_yaml="", params={}, metrics={}, tags=tags, table=table)


def run_a() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "question_id": ["q1", "q2", "q3", "q4", "q5"],
            "question": ["one?", "two?", "three?", "four?", "five?"],
            "hit": [True, True, False, False, True],
            "contains_gold": [1.0, 0.0, 0.0, 1.0, None],
            "latency_s": [1.0, 2.0, 3.0, 4.0, 5.0],
            "cost": [0.01, 0.01, 0.01, 0.01, 0.01],
            "tokens_in": [100, 100, 100, 100, 100],
            "t_generate": [0.5, 0.5, 0.5, 0.5, 0.5],
            "hit_rank": [1, 2, 0, 0, 1],
            "answerable": [True] * 5,
            "error": [None] * 5,
        }
    )


def run_b() -> pd.DataFrame:
    # Same questions, shuffled order: the join is by question_id, not by position.
    frame = run_a().iloc[[4, 3, 2, 1, 0]].reset_index(drop=True)
    by_id = frame.set_index("question_id")
    by_id.loc["q1", "hit"] = False  # loss
    by_id.loc["q3", "hit"] = True  # win
    by_id.loc["q4", "hit"] = True  # win; q2 and q5 tie
    by_id.loc["q2", "contains_gold"] = 1.0  # win
    by_id.loc["q4", "contains_gold"] = 0.0  # loss; q1, q3 tie; q5 unscored on both sides
    by_id["latency_s"] = [5.5, 3.0, 3.0, 1.0, 0.5]  # q5 +0.5 loss, q4 -1 win, q3 tie, q2 -1 win, q1 -0.5 win
    return by_id.reset_index()


def row(comparison: Comparison, metric: str) -> dict[str, Any]:
    return comparison.summary.set_index("metric").loc[metric].to_dict()


def test_wins_losses_and_ties_are_counted_per_question() -> None:
    result = compare(run_a(), run_b())
    assert (row(result, "hit")["wins"], row(result, "hit")["losses"], row(result, "hit")["ties"]) == (2, 1, 2)
    gold = row(result, "contains_gold")
    assert (gold["wins"], gold["losses"], gold["ties"], gold["n"]) == (1, 1, 2, 4)
    latency = row(result, "latency_s")  # lower is better: a faster question is a win for B
    assert (latency["wins"], latency["losses"], latency["ties"], latency["direction"]) == (3, 1, 1, "lower")
    assert row(result, "hit")["mean_a"] == pytest.approx(0.6) and row(result, "hit")["mean_b"] == pytest.approx(0.8)
    assert row(result, "hit")["diff"] == pytest.approx(0.2)


def test_per_question_rows_line_up_by_question_id() -> None:
    per_q = compare(run_a(), run_b()).per_question
    assert list(per_q.columns) == ["question_id", "question", "metric", "a", "b", "diff", "outcome", "note"]
    hit = per_q[per_q["metric"] == "hit"].set_index("question_id")
    assert hit.loc["q1", ["question", "a", "b", "diff", "outcome"]].tolist() == ["one?", 1.0, 0.0, -1.0, "loss"]
    assert hit.loc["q3", "outcome"] == "win" and hit.loc["q2", "outcome"] == "tie"
    gold = per_q[per_q["metric"] == "contains_gold"].set_index("question_id")
    assert pd.isna(gold.loc["q5", "outcome"]) and np.isnan(gold.loc["q5", "diff"])


def test_default_metrics_are_quality_cost_and_latency_never_bookkeeping() -> None:
    scored = {"recall_at_n": [0.5] * 5, "faithfulness__failed": [False] * 5, "faithfulness__retries": [0] * 5}
    bookkeeping = {
        "cached_stages": [0, 1, 2, 0, 1],
        "route_score": [0.9, 0.4, 0.7, 0.2, 0.5],
        "has_evidence": [True] * 5,
        "repeat": [0] * 5,
        "judge_retries": [1, 0, 0, 2, 0],
        "faithfulness__variance": [0.1] * 5,
    }
    a, b = run_a().assign(**scored, **bookkeeping), run_b().assign(**scored, **bookkeeping)
    b["route_score"] = 1.0  # a "better" router confidence must not show up as a win
    summary = compare(a, b).summary
    assert list(summary["metric"]) == ["hit", "contains_gold", "latency_s", "cost", "tokens_in", "recall_at_n"]
    assert summary.set_index("metric").loc["tokens_in", "direction"] == "lower"  # tokens are cost
    expected = ["metric", "mean_a", "mean_b", "diff", "ci_low", "ci_high", "p_value", "p_holm", "significant"]
    expected += ["n", "wins", "losses", "ties", "errored_a", "errored_b", "errored_both", "cached_left_out"]
    assert list(summary.columns[:17]) == expected
    asked = compare(run_a(), run_b(), metrics=["tokens_in", "t_generate"]).summary
    assert list(asked["metric"]) == ["tokens_in", "t_generate"] and asked["ties"].tolist() == [5, 5]
    assert asked["direction"].tolist() == ["lower", "lower"]


@pytest.mark.parametrize("column", ["cached_stages", "route_score", "hit_rank", "answerable", "faithfulness__retries"])
def test_asking_for_a_bookkeeping_column_says_it_is_not_a_metric(column: str) -> None:
    extra = {"cached_stages": 0, "route_score": 0.5, "faithfulness__retries": 0}
    with pytest.raises(EvaluationError, match=f"^{column} is not a metric: "):
        compare(run_a().assign(**extra), run_b().assign(**extra), metrics=["hit", column])


def test_unknown_metric_lists_the_available_ones() -> None:
    with pytest.raises(EvaluationError) as info:
        compare(run_a(), run_b(), metrics=["hit", "faithfulness"])
    message = str(info.value)
    assert message.startswith("unknown metric faithfulness; available: hit, contains_gold, latency_s")
    assert "\n" not in message


def test_different_question_sets_are_refused_in_one_line() -> None:
    a = run_a()
    b = pd.concat([run_b().iloc[2:], run_b().iloc[:1].assign(question_id="q9")], ignore_index=True)
    with pytest.raises(EvaluationError) as info:
        compare(a, b)
    assert str(info.value) == "runs cover different questions: 2 only in A, 1 only in B"


def test_different_dataset_hashes_are_refused() -> None:
    with pytest.raises(EvaluationError) as info:
        compare(run_a().assign(dataset_hash="aaaa"), run_b().assign(dataset_hash="bbbb"))
    assert str(info.value) == "runs use different datasets: dataset_hash aaaa in A, bbbb in B"
    with pytest.raises(EvaluationError, match="different datasets: squad in A, nq in B"):
        compare(run_a().assign(dataset="squad"), run_b().assign(dataset="nq"))
    same = compare(run_a().assign(dataset="squad", dataset_hash="aaaa"), run_b().assign(dataset_hash="aaaa"))
    assert same.dataset == "squad (aaaa)"


def test_repeated_or_missing_question_ids_are_refused() -> None:
    with pytest.raises(EvaluationError, match="run A has 1 repeated question_id"):
        compare(pd.concat([run_a(), run_a().iloc[:1]]), run_b())
    with pytest.raises(EvaluationError, match="run B has no question_id column"):
        compare(run_a(), run_b().drop(columns="question_id"))


def test_a_question_that_errored_on_one_side_is_that_sides_loss() -> None:
    b = run_b()
    b.loc[b["question_id"] == "q3", "error"] = "ProviderTimeout: slow"  # B's q3 hit was a win
    result = compare(run_a(), b)
    hit = row(result, "hit")
    assert (hit["n"], hit["wins"], hit["losses"], hit["ties"]) == (5, 1, 2, 2)
    assert (hit["errored_a"], hit["errored_b"], hit["errored_both"]) == (0, 1, 0)
    assert hit["mean_b"] == pytest.approx(0.6) and hit["diff"] == pytest.approx(0.0)  # +0.2 without the error
    gold = row(result, "contains_gold")  # runner rows of a failed question have no contains_gold
    assert (gold["n"], gold["wins"], gold["losses"], gold["ties"]) == (4, 1, 2, 1)
    latency = row(result, "latency_s")  # a failure is never faster: it takes the slowest latency seen
    assert (latency["wins"], latency["losses"], latency["ties"]) == (3, 2, 0)
    per_q = result.per_question.set_index(["metric", "question_id"])
    assert per_q.loc[("hit", "q3"), ["b", "outcome", "note"]].tolist() == [0.0, "loss", "B errored"]
    assert per_q.loc[("latency_s", "q3"), "b"] == 5.5
    assert (result.errored_a, result.errored_b, result.errored_both) == (0, 1, 0)
    assert "errored: 0 only in A (A's losses), 1 only in B (B's losses), 0 in both (ties)" in result.to_text()


def test_errors_on_the_cheap_side_do_not_make_it_cheaper() -> None:
    # The runner writes cost 0 and tokens 0 for a question that failed: that is not a saving.
    a = run_a().assign(cost=[0.01, 0.02, 0.03, 0.02, 0.01])
    b = run_a().assign(cost=[0.0, 0.0, 0.01, 0.02, 0.01], error=["Timeout", "Timeout", None, None, None])
    cost = row(compare(a, b), "cost")
    assert (cost["wins"], cost["losses"], cost["errored_b"]) == (1, 2, 2)
    assert cost["mean_b"] == pytest.approx((0.03 + 0.03 + 0.01 + 0.02 + 0.01) / 5)
    free = row(compare(run_a().assign(cost=0.0), run_a().assign(cost=0.0)), "cost")
    assert free["interval"] == "point" and free["ci_low"] == free["ci_high"] == 0.0  # not a pass/fail interval


def test_errors_on_both_sides_are_ties_and_no_answer_is_an_error() -> None:
    a = run_a().assign(error=[None, "ProviderTimeout: slow", None, None, None], answer=["x"] * 5)
    b = run_b().set_index("question_id").loc[a["question_id"]].reset_index()
    b = b.assign(error=[None, "GuardrailError: blocked", None, None, None], answer=["y", "y", None, "y", "y"])
    result = compare(a, b)
    hit = row(result, "hit")
    # q2 errored on both sides: a tie; q3 has no answer in B: B's loss, where it had been a win.
    assert (hit["n"], hit["wins"], hit["losses"], hit["ties"]) == (5, 1, 2, 2)
    assert (hit["errored_a"], hit["errored_b"], hit["errored_both"]) == (0, 1, 1)
    assert (result.errored_a, result.errored_b, result.errored_both) == (0, 1, 1)
    note = result.per_question.set_index(["metric", "question_id"]).loc[("hit", "q2"), ["outcome", "note"]]
    assert note.tolist() == ["tie", "both errored"]


def test_a_run_that_errors_where_the_other_answers_loses_significantly() -> None:
    ids = [f"q{i}" for i in range(40)]
    a = pd.DataFrame({"question_id": ids, "score": np.linspace(0.5, 0.9, 40), "error": None})
    b = a.assign(score=a["score"] + 0.01)
    b.loc[:19, "error"] = "ProviderUnavailable: down"  # half of B's questions failed
    score = row(compare(a, b), "score")
    assert score["n"] == 40 and score["errored_b"] == 20 and score["losses"] == 20 and score["wins"] == 20
    assert score["diff"] < -0.2 and score["significant"]


def test_holm_decides_significance_over_all_metrics() -> None:
    # Six wins in six on a pass/fail metric: exact p = 2/64, significant alone; three such
    # metrics tested together are not (Holm: 3 x 2/64 = 0.094).
    ids = [f"q{i}" for i in range(6)]
    a = pd.DataFrame({"question_id": ids, "m1": 0, "m2": 0, "m3": 0})
    b = pd.DataFrame({"question_id": ids, "m1": 1, "m2": 1, "m3": 1})
    alone = row(compare(a, b, metrics=["m1"]), "m1")
    assert alone["p_value"] == pytest.approx(2 / 64) and alone["p_holm"] == pytest.approx(2 / 64)
    assert alone["significant"]
    together = compare(a, b).summary
    assert together["p_value"].tolist() == pytest.approx([2 / 64] * 3)
    assert together["p_holm"].tolist() == pytest.approx([6 / 64] * 3) and not together["significant"].any()
    assert "Holm-adjusted p below 0.05 (3 metrics tested together)" in compare(a, b).to_text()


def test_a_small_pass_fail_sweep_gets_a_newcombe_interval_not_one_to_one() -> None:
    ids = [f"q{i}" for i in range(5)]
    a = pd.DataFrame({"question_id": ids, "hit": [False] * 5})
    hit = row(compare(a, a.assign(hit=True)), "hit")
    assert hit["interval"] == "newcombe" and hit["ci_high"] == 1.0 and 0.3 < hit["ci_low"] < 0.45


def cached(frame: pd.DataFrame, stages: list[int]) -> pd.DataFrame:
    return frame.set_index("question_id").assign(cached_stages=stages).reset_index()


def test_latency_of_cache_served_questions_is_left_out_and_counted() -> None:
    a = cached(run_a(), [0, 0, 0, 0, 0])
    b = cached(run_b().set_index("question_id").loc[a["question_id"]].reset_index(), [3, 0, 0, 0, 1])
    result = compare(a, b, metrics=["hit", "latency_s", "t_generate"])
    latency = row(result, "latency_s")  # q1 (win) and q5 (loss) were served from B's cache
    assert (latency["n"], latency["wins"], latency["losses"], latency["ties"]) == (3, 2, 0, 1)
    assert latency["cached_left_out"] == 2 and latency["note"] == "2 cache-served pairs left out"
    assert row(result, "t_generate")["n"] == 3
    assert row(result, "hit")["n"] == 5 and row(result, "hit")["cached_left_out"] == 0  # quality keeps them
    assert result.cached == 2 and "latency: 2 questions served from the stage cache are left out" in result.to_text()
    outcome = result.per_question.set_index(["metric", "question_id"]).loc[("latency_s", "q1"), ["outcome", "note"]]
    assert pd.isna(outcome["outcome"]) and outcome["note"] == "served from cache"


def test_latency_is_not_comparable_when_every_pair_was_cache_served() -> None:
    a, b = cached(run_a(), [1] * 5), cached(run_b(), [0, 0, 0, 0, 0])
    result = compare(a, b)
    latency = row(result, "latency_s")
    assert latency["n"] == 0 and math.isnan(latency["diff"]) and math.isnan(latency["p_holm"])
    assert (latency["wins"], latency["losses"], latency["ties"]) == (0, 0, 0) and not latency["significant"]
    assert latency["note"] == "not comparable: every answered pair was served from the stage cache (5 left out)"
    assert result.summary["p_holm"].notna().sum() == len(result.summary) - 1  # not in the Holm family
    assert "not comparable" in result.to_text()


def test_a_clear_improvement_is_significant_and_a_copy_is_not() -> None:
    rng = np.random.default_rng(3)
    ids = [f"q{i}" for i in range(120)]
    a = pd.DataFrame({"question_id": ids, "score": rng.random(120)})
    b = a.assign(score=np.clip(a["score"] + 0.15 + rng.normal(scale=0.1, size=120), 0, 1))
    better = row(compare(a, b), "score")
    assert better["significant"] and better["ci_low"] > 0 and better["p_value"] < 0.01
    same = row(compare(a, a.copy()), "score")
    assert not same["significant"] and same["p_value"] == 1.0 and same["ties"] == 120


def test_inputs_are_not_modified() -> None:
    a, b = run_a(), run_b()
    before = a.copy(), b.copy()
    compare(a, b)
    pd.testing.assert_frame_equal(a, before[0])
    pd.testing.assert_frame_equal(b, before[1])


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".csv"])
def test_results_files_compare_like_frames(tmp_path: Path, suffix: str) -> None:
    paths = []
    for name, frame in (("a", run_a()), ("b", run_b())):
        path = tmp_path / f"{name}{suffix}"
        if suffix == ".parquet":
            frame.to_parquet(path, index=False)
        elif suffix == ".jsonl":
            frame.to_json(path, orient="records", lines=True)
        else:
            frame.to_csv(path, index=False)
        paths.append(path)
    from_files = compare(str(paths[0]), paths[1], metrics=["hit", "contains_gold", "latency_s"])
    from_frames = compare(run_a(), run_b(), metrics=["hit", "contains_gold", "latency_s"])
    pd.testing.assert_frame_equal(from_files.summary, from_frames.summary)
    assert from_files.label_a == str(paths[0])
    # An error column with no errors reads back as all-NaN numbers; it is still not a metric.
    defaults = compare(str(paths[0]), paths[1]).summary["metric"].tolist()
    assert defaults == compare(run_a(), run_b()).summary["metric"].tolist()


def test_missing_results_file_is_an_evaluation_error(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="no results file"):
        compare(str(tmp_path / "nope.parquet"), run_b())


def test_runs_are_loaded_by_id_through_the_tracker() -> None:
    tracker = TableTracker()
    id_a = tracker.log(run_a(), dataset="small", dataset_hash="h1")
    id_b = tracker.log(run_b(), dataset="small", dataset_hash="h1")
    result = compare(id_a, id_b, tracker=tracker)
    assert (result.label_a, result.label_b, result.dataset) == (id_a, id_b, "small (h1)")
    assert row(result, "hit")["wins"] == 2
    assert row(compare(id_a, run_b(), tracker=tracker), "hit")["losses"] == 1  # run id against a frame


def test_runs_on_different_dataset_hash_tags_are_refused() -> None:
    tracker = TableTracker()
    id_a = tracker.log(run_a(), dataset="small", dataset_hash="h1")
    id_b = tracker.log(run_b(), dataset="small", dataset_hash="h2")
    with pytest.raises(EvaluationError) as info:
        compare(id_a, id_b, tracker=tracker)
    assert str(info.value) == "runs use different datasets: dataset_hash h1 in A, h2 in B"


def test_a_tracker_without_tags_still_compares() -> None:
    class TablesOnly:
        def __init__(self, tables: dict[str, pd.DataFrame]) -> None:
            self.tables = tables

        def load_table(self, run_id: str) -> pd.DataFrame:
            return self.tables[run_id]

    result = compare("run-1", "run-2", tracker=TablesOnly({"run-1": run_a(), "run-2": run_b()}))
    assert result.dataset is None and row(result, "hit")["wins"] == 2


def test_tracker_errors_pass_through_as_one_line() -> None:
    with pytest.raises(TrackingError, match="no run missing"):
        compare("missing", run_b(), tracker=TableTracker())


def test_to_text_shows_every_metric_and_both_runs() -> None:
    text = compare(run_a().assign(dataset="small"), run_b().assign(dataset="small")).to_text()
    assert "5 questions of dataset small" in text
    for metric in ("hit (higher)", "contains_gold (higher)", "latency_s (lower)", "cost (lower)"):
        assert metric in text
    assert "2/1/2" in text  # hit: wins/losses/ties


@pytest.mark.integration
def test_real_mlflow_runs_by_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    from workbench.tracking import MlflowTracker

    tracker = MlflowTracker(tmp_path / "mlflow.db")

    def log(frame: pd.DataFrame, dataset_hash: str) -> str:
        return tracker.log_run(
            experiment="compare",
            run_name="r",
            config_yaml="",
            params={},
            metrics={},
            tags={"dataset": "small", "dataset_hash": dataset_hash},
            table=frame,
        )

    id_a, id_b, id_c = log(run_a(), "h1"), log(run_b(), "h1"), log(run_b(), "h2")
    result = compare(id_a, id_b, tracker=tracker)
    assert result.dataset == "small (h1)"
    assert row(result, "hit")["wins"] == 2 and row(result, "latency_s")["wins"] == 3
    with pytest.raises(EvaluationError, match="dataset_hash h1 in A, h2 in B"):
        compare(id_a, id_c, tracker=tracker)
