"""Running sweeps end to end on the real extractive pipeline: rows, resume, budget, errors,
shared resources, stage reuse, halving and split-then-confirm."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.sweeps.conftest import write_spec
from workbench.core.protocols import Completion, GenerationRequest
from workbench.models.extractive import ExtractiveModel
from workbench.sweeps import plan_sweep, run_sweep
from workbench.sweeps.sweep import JOURNAL_FILE
from workbench.testing.embedders import HashingEmbedder

KEY = ["variant", "question_id", "repeat"]


def _run(spec: Path, dataset: Path, **kwargs: Any) -> Any:
    kwargs.setdefault("tracker", None)
    kwargs.setdefault("embedder", HashingEmbedder())
    return run_sweep(spec, dataset, root=spec.parent, **kwargs)


def _journal_rows(spec: Path) -> list[tuple[str, str, int]]:
    with sqlite3.connect(spec.parent / JOURNAL_FILE) as db:
        return db.execute("SELECT variant, question_id, repeat FROM rows").fetchall()


def test_grid_sweep_answers_every_variant_on_every_question(sweep_spec: Path, small_dataset: Path) -> None:
    result = _run(sweep_spec, small_dataset, limit=10)
    rows = result.rows
    assert len(rows) == 4 * 10
    assert not rows.duplicated(KEY).any()
    assert set(rows["variant"]) == set(result.variants["variant"])
    assert result.status == "finished"
    assert result.winner in set(rows["variant"])
    assert result.recommended in result.tied
    assert set(result.leaderboard["variant"]) == set(rows["variant"])
    # The rows file: one row per (variant, question, repeat), answers, metrics and errors.
    saved = pd.read_parquet(result.rows_path)
    assert {"variant", "question_id", "repeat", "answer", "token_f1", "error"} <= set(saved.columns)
    assert len(saved) == 40
    # top_k really changed what the pipeline retrieved.
    by_k = {
        v: rows[rows["variant"] == v]["retrieved"].map(len).max()
        for v in result.variants.loc[result.variants["retrieval.top_k"] == 1, "variant"]
    }
    assert set(by_k.values()) == {1}


def test_a_second_run_resumes_and_recomputes_nothing(sweep_spec: Path, small_dataset: Path) -> None:
    first = _run(sweep_spec, small_dataset, limit=6)
    again = _run(sweep_spec, small_dataset, limit=6)
    assert again.sweep_id == first.sweep_id
    assert len(again.rows) == len(first.rows) == 24
    assert len(_journal_rows(sweep_spec)) == 24
    pd.testing.assert_frame_equal(first.rows, again.rows)


def test_budget_stops_cleanly_and_a_larger_budget_finishes(tmp_path: Path, small_dataset: Path) -> None:
    spec = write_spec(tmp_path, small_dataset / "corpus.jsonl", budget={"questions": 7}, concurrency=2)
    stopped = _run(spec, small_dataset, limit=5)
    assert stopped.status.startswith("budget questions reached")
    assert len(stopped.rows) == 7
    assert stopped.spent.questions == 7
    write_spec(tmp_path, small_dataset / "corpus.jsonl", budget={"questions": 100}, concurrency=2)
    finished = _run(spec, small_dataset, limit=5)
    assert finished.sweep_id == stopped.sweep_id  # the budget is not part of the sweep's identity
    assert finished.status == "finished"
    assert len(finished.rows) == 20 and not finished.rows.duplicated(KEY).any()
    kept = stopped.rows.set_index(KEY)["answer"]
    assert finished.rows.set_index(KEY)["answer"].loc[kept.index].equals(kept)


def test_model_call_budget_counts_only_fresh_calls(tmp_path: Path, small_dataset: Path) -> None:
    spec = write_spec(tmp_path, small_dataset / "corpus.jsonl", budget={"model_calls": 6}, concurrency=1)
    result = _run(spec, small_dataset, limit=5)
    assert result.status.startswith("budget model_calls reached")
    assert result.spent.model_calls == 6
    assert int(result.rows["model_calls"].sum()) == 6


class _Flaky(ExtractiveModel):
    """Fails on about a quarter of the questions (by length) until `healed` is set."""

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.healed, self.calls = False, 0

    def complete(self, request: GenerationRequest) -> Completion:
        self.calls += 1
        if not self.healed and len(request.question) % 4 == 0:
            raise RuntimeError("provider hiccup")
        return super().complete(request)


def test_errors_are_rows_kept_apart_and_retry_errors_reruns_only_them(sweep_spec: Path, small_dataset: Path) -> None:
    from workbench.core.config import load_yaml
    from workbench.core.schema import PipelineConfig

    config = load_yaml(PipelineConfig, sweep_spec.parent / "config.yaml")
    flaky = _Flaky(config.models["extractive"])
    first = _run(sweep_spec, small_dataset, limit=8, models={"extractive": flaky}, cache=None)
    failed = first.rows["error"].notna()
    assert 0 < failed.sum() < len(first.rows)
    assert first.rows.loc[failed, "error"].str.contains("provider hiccup|all endpoints failed").all()
    errors = first.errors().set_index("variant")
    assert errors["errors"].sum() == failed.sum()
    board = first.leaderboard.set_index("variant")
    assert (board["error_rate"] > 0).all()

    flaky.healed, flaky.calls = True, 0
    retried = _run(sweep_spec, small_dataset, limit=8, models={"extractive": flaky}, cache=None, retry_errors=True)
    assert flaky.calls == failed.sum()  # only the errored rows ran again
    assert retried.rows["error"].isna().all()
    assert len(retried.rows) == len(first.rows)


def test_variants_share_models_and_reuse_unchanged_stages(tmp_path: Path, small_dataset: Path) -> None:
    # Two variants that differ only in the model: the second reuses guards, routing and retrieval.
    spec = write_spec(
        tmp_path, small_dataset / "corpus.jsonl", axes={"generation.model": ["extractive", "strict"]}, concurrency=1
    )
    result = _run(spec, small_dataset, limit=6)
    rows = result.rows
    # Question by question, variants in name order: the first ran every stage; the second
    # found all but the generator and output guard in the cache.
    ran_first, ran_second = sorted(result.variants["variant"])
    first, second = rows[rows["variant"] == ran_first], rows[rows["variant"] == ran_second]
    assert (second["cached_stages"] >= 4).all()
    assert (first["cached_stages"] == 0).all()
    # Each variant called its own model: their answers differ (strict abstains).
    by_model = dict(zip(result.variants["variant"], result.variants["label"], strict=True))
    strict, loose = (second, first) if "strict" in by_model[ran_second] else (first, second)
    assert strict["abstained"].mean() > loose["abstained"].mean()


def test_one_loaded_model_per_endpoint_config(sweep_spec: Path, small_dataset: Path) -> None:
    from workbench.sweeps.resources import SharedResources
    from workbench.sweeps.sweep import Sweep

    sweep = Sweep(sweep_spec, small_dataset, root=sweep_spec.parent, limit=4)
    resources = SharedResources(sweep.root, cache=None, embedder=HashingEmbedder())
    try:
        pools = [resources.pool(v.config) for v in sweep.variants]
        models = {id(pool.model("extractive")) for pool in pools}
        assert len(models) == 1  # four variants, one model
        indexes = {id(resources.index(v.config, sweep.dataset.documents)) for v in sweep.variants}
        assert len(indexes) == 1  # retrieval settings differ; the index (chunks, vectors) does not
    finally:
        resources.close()
        sweep.journal.close()


def test_repeats_after_the_first_really_run_again(tmp_path: Path, small_dataset: Path) -> None:
    spec = write_spec(tmp_path, small_dataset / "corpus.jsonl", axes={"retrieval.top_k": [2]}, repeats=2)
    _run(spec, small_dataset, limit=4)
    result = _run(spec, small_dataset, limit=4)  # everything is cached for repeat 0 now
    rows = result.rows
    assert len(rows) == 8 and set(rows["repeat"]) == {0, 1}


def test_halving_prunes_a_clearly_worse_variant_early(tmp_path: Path, small_dataset: Path) -> None:
    spec = write_spec(
        tmp_path,
        small_dataset / "corpus.jsonl",
        axes={"generation.model": ["extractive", "strict"]},
        search={"strategy": "halving", "initial_questions": 12, "factor": 2},
    )
    result = _run(spec, small_dataset)
    counts = result.rows.groupby("variant").size()
    variants = result.variants.set_index("variant")
    pruned = variants[variants["pruned_at_rung"].notna()]
    assert len(pruned) == 1
    loser = pruned.index[0]
    assert variants.loc[loser, "generation.model"] == "strict"
    assert counts[loser] == 12
    assert counts.drop(loser).iloc[0] == 24
    assert result.winner != loser


def test_split_then_confirm_picks_the_winner_on_held_out_questions(tmp_path: Path, small_dataset: Path) -> None:
    spec = write_spec(tmp_path, small_dataset / "corpus.jsonl", confirm={"holdout": 0.25})
    result = _run(spec, small_dataset, limit=16)
    search = result.rows[result.rows["split"] == "search"]
    confirm = result.rows[result.rows["split"] == "confirm"]
    assert search["question_id"].nunique() == 12 and confirm["question_id"].nunique() == 4
    assert not set(search["question_id"]) & set(confirm["question_id"])
    assert set(confirm["variant"]) <= set(search["variant"])
    assert result.winner in set(confirm["variant"])
    assert set(result.leaderboard["variant"]) == set(confirm["variant"])


def test_dry_run_estimates_and_runs_nothing(sweep_spec: Path, small_dataset: Path) -> None:
    plan = plan_sweep(sweep_spec, small_dataset, root=sweep_spec.parent, limit=5)
    assert len(plan.variants) == 4 and plan.items == 20
    assert plan.estimate.model_calls == 20
    assert _journal_rows(sweep_spec) == []


@pytest.mark.parametrize("bad", ["no_such_dataset"])
def test_unknown_dataset_is_a_dataset_error(sweep_spec: Path, bad: str) -> None:
    from workbench.core.errors import DatasetError

    with pytest.raises(DatasetError):
        _run(sweep_spec, Path(bad))


@pytest.mark.integration
def test_variants_with_different_llama_params_load_the_gguf_once() -> None:
    from workbench.core.config import load_yaml
    from workbench.core.schema import PipelineConfig
    from workbench.sweeps.resources import SharedResources

    base = load_yaml(PipelineConfig, "experiments/quickstart.yaml")
    short = base.models["smollm2"].model_copy(update={"params": {"temperature": 0.0, "max_tokens": 4}})
    longer = base.models["smollm2"].model_copy(update={"params": {"temperature": 0.0, "max_tokens": 8}})
    resources = SharedResources(".", cache=None, embedder=HashingEmbedder())
    try:
        a, b = resources.model(short), resources.model(longer)
        assert a is not b  # each keeps its own params
        a.warm_up()  # type: ignore[attr-defined]
        b.warm_up()  # type: ignore[attr-defined]
        assert len(resources._llama_weights()) == 1  # one GGUF in memory
        from workbench.core.protocols import GenerationRequest

        messages = ({"role": "user", "content": "Say yes."},)
        answer = b.complete(GenerationRequest(question="Say yes.", messages=messages))
        assert answer.tokens_out <= 8
    finally:
        resources.close()


def test_halving_with_keep_also_drops_all_but_the_best_share(tmp_path: Path, small_dataset: Path) -> None:
    spec = write_spec(
        tmp_path,
        small_dataset / "corpus.jsonl",
        search={"strategy": "halving", "initial_questions": 6, "factor": 2, "keep": 0.5},
    )
    result = _run(spec, small_dataset, limit=12)
    counts = result.rows.groupby("variant").size()
    variants = result.variants.set_index("variant")
    pruned = variants[variants["pruned_at_rung"].notna()]
    assert len(pruned) == 2  # four variants, half kept after the first rung
    assert (counts[pruned.index] == 6).all() and (counts.drop(pruned.index) == 12).all()
    assert pruned["pruned_reason"].str.contains("outside the best 50%").all()
    assert result.winner not in pruned.index
    assert int(result.spent.model_calls) < 4 * 12


def test_a_resumed_sweep_with_nothing_new_is_not_logged_again(sweep_spec: Path, small_dataset: Path) -> None:
    from workbench.tracking import MlflowTracker

    tracker = MlflowTracker(f"sqlite:///{sweep_spec.parent / 'mlflow.db'}")
    first = _run(sweep_spec, small_dataset, limit=4, tracker=tracker)
    assert first.parent_run_id
    calls: list[object] = []
    original = tracker.log_sweep
    tracker.log_sweep = lambda sweep: calls.append(sweep) or original(sweep)  # type: ignore[method-assign]
    again = _run(sweep_spec, small_dataset, limit=4, tracker=tracker)
    assert again.parent_run_id == first.parent_run_id and calls == []
    more = _run(sweep_spec, small_dataset, limit=5, tracker=tracker)  # new questions: a new sweep, logged
    assert more.parent_run_id != first.parent_run_id and len(calls) == 1
