from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from workbench.core.errors import TrackingError
from workbench.testing.mlflow_server import mlflow_server
from workbench.testing.tracker import InMemoryTracker
from workbench.tracking import MlflowTracker, Tracker
from workbench.tracking.mlflow_tracker import CONFIG_ARTIFACT, TABLE_ARTIFACT
from workbench.tracking.sweep_log import (
    COMPARISONS_ARTIFACT,
    LEADERBOARD_ARTIFACT,
    PARETO_ARTIFACT,
    SPEC_ARTIFACT,
    SweepLog,
    SweepRunIds,
    VariantLog,
    log_sweep,
)

METRICS = ["faithfulness", "correctness"]


def make_sweep(
    n_variants: int = 3, n_questions: int = 4, *, sweep_id: str = "sw-1", name: str = "toy-sweep"
) -> SweepLog:
    """A sweep as the engine hands it over; score (v, q) is NaN when (v + q) % 3 == 0 for faithfulness."""
    questions = [f"q{i}" for i in range(n_questions)]
    dataset = pd.DataFrame(
        {"question_id": questions, "question": [f"What is {q}?" for q in questions], "gold_answer": questions}
    )
    variants = []
    for v in range(n_variants):
        table = pd.DataFrame(
            {
                "question_id": questions,
                "repeat": [0] * n_questions,
                "question": dataset["question"],
                "answer": [f"answer {q}" if q != "q1" else None for q in questions],
                "gold_answer": questions,
                "contexts": [[f"ctx {q}", "more"] for q in questions],
                "error": ["timeout" if (v, q) == (0, "q1") else None for q in questions],
                "latency_s": [0.3 + 0.01 * i for i in range(n_questions)],
                "t_retriever": [0.05] * n_questions,
                "t_generator": [0.25 if i % 2 else float("nan") for i in range(n_questions)],
                "faithfulness": [float("nan") if (v + i) % 3 == 0 else 0.5 + 0.1 * v for i in range(n_questions)],
                "correctness": [1.0 if i % 2 else 0.0 for i in range(n_questions)],
            }
        )
        variants.append(
            VariantLog(
                variant=f"v-{v:06x}",
                params={"retrieval.top_k": v + 1, "prompt": "concise", "models.gen.api_key": "sk-secret"},
                config_yaml=f"retrieval:\n  top_k: {v + 1}\nendpoint: https://user:pw@example.com/v1\n",
                config_hash=f"hash{v}",
                metrics={
                    "faithfulness": 0.5 + 0.1 * v,
                    "faithfulness_ci_low": 0.4 + 0.1 * v,
                    "faithfulness_ci_high": 0.6 + 0.1 * v,
                    "faithfulness_n": float(n_questions),
                    "error_rate": 0.0,
                    "cost_per_1k_questions": 1.0 + v,
                    "latency_s_p95": 0.4,
                },
                table=table,
                metric_names=METRICS,
            )
        )
    names = [v.variant for v in variants]
    leaderboard = pd.DataFrame(
        {
            "variant": names,
            "faithfulness": [0.5 + 0.1 * v for v in range(n_variants)],
            "cost_per_1k_questions": [1.0 + v for v in range(n_variants)],
            "rank": list(range(n_variants, 0, -1)),
            "feasible": [True] * n_variants,
            "pareto": [True] * n_variants,
        }
    )
    comparisons = pd.DataFrame({"variant": names[:-1], "vs": names[-1], "delta": [-0.1] * (n_variants - 1)})
    return SweepLog(
        sweep_id=sweep_id,
        name=name,
        spec_yaml="name: toy-sweep\naxes:\n  retrieval.top_k: [1, 2, 3]\n",
        dataset_name="toy-qa",
        dataset_digest="d1g3st",
        dataset_frame=dataset,
        variants=variants,
        leaderboard=leaderboard,
        comparisons=comparisons,
        winner=names[-1],
        recommended=names[0],
        pareto=names,
        pareto_axes=("faithfulness", "cost_per_1k_questions"),
        note="Winner beats the rest on faithfulness.",
        status="finished",
    )


def expected_scores(sweep: SweepLog) -> int:
    return sum(int(not math.isnan(x)) for v in sweep.variants for m in v.metric_names for x in v.table[m].astype(float))


def check_logged(url: str, sweep: SweepLog, ids: SweepRunIds) -> None:
    """Read everything back with a plain MlflowClient."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=url)
    experiment = client.get_experiment_by_name(sweep.name)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("workbench.kind") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == ids.parent_run_id]
    assert [p.info.run_id for p in parents] == [ids.parent_run_id]
    assert len(runs) == 1 + len(sweep.variants)
    assert {c.info.run_id for c in children} == set(ids.child_run_ids.values())

    parent = parents[0]
    assert parent.info.run_name == sweep.name and parent.info.status == "FINISHED"
    tags = parent.data.tags
    assert tags["workbench.sweep_id"] == sweep.sweep_id
    assert tags.get("workbench.winner") == sweep.winner
    assert tags.get("workbench.recommended") == sweep.recommended
    assert tags["workbench.status"] == sweep.status and tags["mlflow.note.content"] == sweep.note
    parent_files = {a.path for a in client.list_artifacts(ids.parent_run_id)}
    assert parent_files >= {LEADERBOARD_ARTIFACT, COMPARISONS_ARTIFACT, PARETO_ARTIFACT, SPEC_ARTIFACT}
    png = Path(client.download_artifacts(ids.parent_run_id, PARETO_ARTIFACT)).read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    board = json.loads(Path(client.download_artifacts(ids.parent_run_id, LEADERBOARD_ARTIFACT)).read_text())
    assert len(board["data"]) == len(sweep.variants) and "pareto" in board["columns"]
    assert {"path": LEADERBOARD_ARTIFACT, "type": "table"} in json.loads(tags["mlflow.loggedArtifacts"])

    for run in [parent, *children]:
        assert run.inputs is not None
        [dataset] = run.inputs.dataset_inputs
        assert (dataset.dataset.name, dataset.dataset.digest) == (sweep.dataset_name, sweep.dataset_digest)

    by_variant = {v.variant: v for v in sweep.variants}
    for child in children:
        variant = by_variant[child.info.run_name]
        run_id, model_id = child.info.run_id, ids.model_ids[variant.variant]
        assert ids.child_run_ids[variant.variant] == run_id
        assert child.data.params == {
            "retrieval.top_k": str(variant.params["retrieval.top_k"]),
            "prompt": "concise",
            "models.gen.api_key": "***",
            "config_hash": variant.config_hash,
        }
        assert child.data.metrics["faithfulness_ci_low"] == pytest.approx(variant.metrics["faithfulness_ci_low"])
        assert child.data.metrics["cost_per_1k_questions"] == variant.metrics["cost_per_1k_questions"]
        assert {a.path for a in client.list_artifacts(run_id)} >= {CONFIG_ARTIFACT, TABLE_ARTIFACT}
        config = Path(client.download_artifacts(run_id, CONFIG_ARTIFACT)).read_text()
        assert "pw@" not in config and "top_k" in config
        table = json.loads(Path(client.download_artifacts(run_id, TABLE_ARTIFACT)).read_text())
        assert len(table["data"]) == len(variant.table)

        model = client.get_logged_model(model_id)
        assert model.name == variant.variant and model.source_run_id == run_id and model.status == "READY"
        assert model.params["config_hash"] == variant.config_hash and model.params["models.gen.api_key"] == "***"
        assert model.metrics is not None and child.outputs is not None
        assert {m.key for m in model.metrics} >= {"faithfulness", "faithfulness_ci_high"}
        assert [o.model_id for o in child.outputs.model_outputs] == [model_id]

        traces = client.search_traces(locations=[experiment.experiment_id], run_id=run_id, max_results=500)
        assert len(traces) == len(variant.table)
        assert {t.info.trace_metadata.get("mlflow.modelId") for t in traces} == {model_id}
        assert len(client.search_traces(locations=[experiment.experiment_id], model_id=model_id)) == len(traces)
        assessments = [a for t in traces for a in t.info.assessments]
        scores = sum(int(not math.isnan(x)) for m in variant.metric_names for x in variant.table[m].astype(float))
        assert len(assessments) == scores
        assert {a.source.source_type for a in assessments} == {"CODE"}
        assert {a.name for a in assessments} == set(variant.metric_names)
        q0 = next(t for t in traces if t.info.tags["question_id"] == "q0")
        assert q0.info.request_preview == "What is q0?" and q0.info.response_preview == "answer q0"
        assert {s.name for s in q0.data.spans} >= {"retriever"}


# -- in memory ------------------------------------------------------------------------------------


def test_in_memory_tracker_keeps_the_sweep_and_gives_stable_ids() -> None:
    tracker = InMemoryTracker()
    assert isinstance(tracker, Tracker)
    sweep = make_sweep()
    first = log_sweep(tracker, sweep)
    again = log_sweep(tracker, make_sweep())
    assert first == again
    assert set(first.child_run_ids) == set(first.model_ids) == {v.variant for v in sweep.variants}
    assert len(set(first.child_run_ids.values())) == len(sweep.variants)
    assert list(tracker.sweeps) == ["sw-1"] and tracker.sweeps["sw-1"].winner == sweep.winner
    with pytest.raises(TrackingError, match="down"):
        log_sweep(InMemoryTracker(fail="store down"), sweep)


def test_pareto_plot_tolerates_missing_axes() -> None:
    from workbench.tracking._sweep_plot import pareto_png

    board = pd.DataFrame({"variant": ["a", "b"], "q": [0.5, float("nan")]})
    assert pareto_png(board, ("q", "cost"), pareto=[], winner=None).startswith(b"\x89PNG")


# -- against a real SQLite store ------------------------------------------------------------------


@pytest.mark.integration
def test_sweep_is_logged_to_sqlite(tmp_path: Path) -> None:
    tracker = MlflowTracker(tmp_path / "mlflow.db")
    assert isinstance(tracker, Tracker)
    sweep = make_sweep()
    ids = log_sweep(tracker, sweep)
    assert set(ids.child_run_ids) == {v.variant for v in sweep.variants}
    check_logged(tracker.tracking_uri, sweep, ids)
    assert expected_scores(sweep) > 0


@pytest.mark.integration
def test_logging_again_reuses_the_runs(tmp_path: Path) -> None:
    import mlflow

    tracker = MlflowTracker(tmp_path / "mlflow.db")
    first = log_sweep(tracker, make_sweep(n_variants=2))
    # A resumed sweep: one more variant, a new winner, a new status.
    resumed = make_sweep(n_variants=3)
    resumed.status = "stopped: budget 3 variants"
    resumed.recommended = None
    again = log_sweep(tracker, resumed)
    assert again.parent_run_id == first.parent_run_id
    for variant, run_id in first.child_run_ids.items():
        assert again.child_run_ids[variant] == run_id and again.model_ids[variant] == first.model_ids[variant]
    check_logged(tracker.tracking_uri, resumed, again)
    tags = mlflow.MlflowClient(tracking_uri=tracker.tracking_uri).get_run(again.parent_run_id).data.tags
    assert "workbench.recommended" not in tags  # cleared: the resumed sweep recommends nothing
    assert tags["workbench.status"] == "stopped: budget 3 variants"
    # the same sweep id in another experiment is another sweep
    other = log_sweep(tracker, make_sweep(n_variants=1, name="elsewhere"))
    assert other.parent_run_id != first.parent_run_id


@pytest.mark.integration
def test_a_variant_whose_params_changed_is_replaced(tmp_path: Path) -> None:
    tracker = MlflowTracker(tmp_path / "mlflow.db")
    sweep = make_sweep(n_variants=2)
    first = log_sweep(tracker, sweep)
    sweep.variants[0].config_hash = "changed"
    sweep.variants = sweep.variants[:1]
    sweep.leaderboard = sweep.leaderboard.iloc[:1]
    sweep.winner = sweep.recommended = sweep.variants[0].variant
    again = log_sweep(tracker, sweep)
    variant = sweep.variants[0].variant
    assert again.child_run_ids[variant] != first.child_run_ids[variant]
    check_logged(tracker.tracking_uri, sweep, again)


@pytest.mark.integration
def test_store_errors_are_one_line_tracking_errors(tmp_path: Path) -> None:
    tracker = MlflowTracker(tmp_path / "mlflow.db")
    sweep = make_sweep(n_variants=1)
    tracker.client.delete_experiment(tracker.client.create_experiment(sweep.name))
    with pytest.raises(TrackingError, match="deleted"):
        log_sweep(tracker, sweep)


@pytest.mark.integration
@pytest.mark.slow
def test_sweep_is_logged_over_http_to_a_real_server(tmp_path: Path) -> None:
    with mlflow_server(tmp_path / "server") as url:
        sweep = make_sweep(n_variants=2, n_questions=3)
        tracker = MlflowTracker(url)
        ids = log_sweep(tracker, sweep)
        check_logged(url, sweep, ids)
        assert log_sweep(tracker, sweep) == ids
        check_logged(url, sweep, ids)
