from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from workbench.core.errors import TrackingError
from workbench.tracking import MlflowTracker, Tracker, resolve_tracking_uri, write_results
from workbench.tracking.mlflow_tracker import CONFIG_ARTIFACT, TABLE_ARTIFACT

CONFIG_YAML = "name: baseline\nretrieval:\n  mode: hybrid\n  top_k: 5\n"


def test_tracking_uri_is_absolute_and_shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path)
    root = MlflowTracker()
    monkeypatch.chdir(tmp_path / "notebooks")
    from_notebook = MlflowTracker("../mlflow.db")
    assert root.tracking_uri == from_notebook.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert MlflowTracker(tmp_path).tracking_uri == root.tracking_uri  # a folder means <folder>/mlflow.db
    assert resolve_tracking_uri("sqlite:///../mlflow.db") == root.tracking_uri
    assert resolve_tracking_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert root.artifact_root == tmp_path / "mlruns"


def test_ui_command(tmp_path: Path) -> None:
    tracker = MlflowTracker(tmp_path / "my store" / "mlflow.db")
    assert tracker.ui_command() == f"mlflow ui --backend-store-uri 'sqlite:///{tmp_path}/my store/mlflow.db'"
    assert tracker.ui_command(port=5001).endswith("--port 5001")
    with pytest.raises(TrackingError, match="tracking server"):
        MlflowTracker("http://127.0.0.1:5000").ui_command()


def test_constructing_does_not_touch_the_store(tmp_path: Path) -> None:
    tracker = MlflowTracker(tmp_path / "sub" / "mlflow.db")
    assert isinstance(tracker, Tracker)
    assert not (tmp_path / "sub").exists()


def test_missing_artifact_is_a_tracking_error(tmp_path: Path) -> None:
    tracker = MlflowTracker(tmp_path / "mlflow.db")
    with pytest.raises(TrackingError, match="artifact file not found"):
        tracker.log_run(
            experiment="e",
            run_name="r",
            config_yaml="",
            params={},
            metrics={},
            tags={},
            table=None,
            artifacts=[tmp_path / "nope.parquet"],
        )


# -- against a real SQLite store ----------------------------------------------------------------


@pytest.fixture
def mlflow_global_uri() -> Iterator[None]:
    """`mlflow.load_table` is fluent API: restore the process-wide tracking URI afterwards."""
    import mlflow

    before = mlflow.get_tracking_uri()
    yield
    mlflow.set_tracking_uri(before)


def _log(tracker: MlflowTracker, frame: pd.DataFrame, artifacts: list[Path], **overrides: object) -> str:
    kwargs: dict[str, object] = dict(
        experiment="rag-eval",
        run_name="baseline-1",
        config_yaml=CONFIG_YAML,
        params={"retrieval": {"mode": "hybrid", "top_k": 5}, "models": ["a", "b"], "note": None},
        metrics={"faithfulness": 0.75, "latency_p50_ms": 120.0, "n_failed": 0},
        tags={"dataset": "toy", "git_sha": "abc123"},
        table=frame,
        artifacts=artifacts,
    )
    kwargs.update(overrides)
    return tracker.log_run(**kwargs)  # type: ignore[arg-type]


@pytest.mark.integration
def test_log_run_to_sqlite_store_reads_back(
    tmp_path: Path, results_frame: pd.DataFrame, mlflow_global_uri: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    monkeypatch.chdir(tmp_path)  # nothing may land in the cwd except what we name
    store = tmp_path / "store" / "mlflow.db"
    parquet = write_results(results_frame, tmp_path / "run" / "results.parquet", None, "r1")
    tracker = MlflowTracker(store)
    run_id = _log(tracker, results_frame, [parquet])

    client = mlflow.MlflowClient(tracking_uri=tracker.tracking_uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "baseline-1"
    assert run.data.params["retrieval.mode"] == "hybrid"
    assert run.data.params["retrieval.top_k"] == "5"
    assert run.data.params["models"] == "[a, b]"
    assert run.data.metrics == {"faithfulness": 0.75, "latency_p50_ms": 120.0, "n_failed": 0.0}
    assert run.data.tags["dataset"] == "toy"
    assert run.data.tags["git_sha"] == "abc123"

    (tmp_path / "dl").mkdir()
    names = {a.path for a in client.list_artifacts(run_id)}
    assert {CONFIG_ARTIFACT, TABLE_ARTIFACT, "results.parquet"} <= names
    config_back = Path(client.download_artifacts(run_id, CONFIG_ARTIFACT, str(tmp_path / "dl"))).read_text()
    assert config_back == CONFIG_YAML

    # mlflow.load_table is fluent: it searches the process-wide store and active experiment
    mlflow.set_tracking_uri(tracker.tracking_uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", run.info.experiment_id)
    table = mlflow.load_table(TABLE_ARTIFACT, run_ids=[run_id])
    assert len(table) == len(results_frame)
    assert table["retrieved_ids"].tolist()[0] == '["d1", "d2"]'
    assert tracker.load_table(run_id)["question_id"].tolist() == ["q1", "q2", "q3"]

    # artifacts live next to the store, not in the cwd
    assert (tmp_path / "store" / "mlruns").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dl", "run", "store"]


@pytest.mark.integration
def test_long_and_many_params_fit_mlflow_limits(tmp_path: Path, results_frame: pd.DataFrame) -> None:
    import mlflow

    params = {f"stage{i}": {"option": i} for i in range(250)}  # three batches
    params["prompt"] = {"template": "x" * 10_000}
    params["k" * 300] = "long key"
    params["bad key!"] = "odd characters"
    tracker = MlflowTracker(tmp_path / "mlflow.db")
    run_id = _log(tracker, results_frame, [], params=params, tags={"t": "y" * 9000})
    data = mlflow.MlflowClient(tracking_uri=tracker.tracking_uri).get_run(run_id).data
    assert len(data.params) == 253
    assert data.params["stage249.option"] == "249"
    assert len(data.params["prompt.template"]) == 6000
    assert data.params["prompt.template"].endswith("[truncated]")
    assert max(len(k) for k in data.params) == 250
    assert data.params["bad key_"] == "odd characters"
    assert len(data.tags["t"]) == 8000


@pytest.mark.integration
def test_two_runs_share_an_experiment_and_a_table_of_only_gaps_logs(
    tmp_path: Path, results_frame: pd.DataFrame
) -> None:
    import mlflow

    tracker = MlflowTracker(tmp_path / "mlflow.db")
    first = _log(tracker, results_frame, [])
    gaps = pd.DataFrame({"a": [None, None], "b": [float("nan"), float("inf")], "c": [pd.NaT, pd.Timestamp(0)]})
    second = _log(MlflowTracker(tmp_path / "mlflow.db"), gaps, [], run_name="baseline-2")
    client = mlflow.MlflowClient(tracking_uri=tracker.tracking_uri)
    assert client.get_run(first).info.experiment_id == client.get_run(second).info.experiment_id
    back = tracker.load_table(second)
    assert back["a"].isna().all() and len(back) == 2


@pytest.mark.integration
def test_unreachable_server_is_one_line_tracking_error(tmp_path: Path, results_frame: pd.DataFrame) -> None:
    from workbench.testing.mlflow_server import free_port

    tracker = MlflowTracker(f"http://127.0.0.1:{free_port()}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        mp.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
        with pytest.raises(TrackingError) as info:
            _log(tracker, results_frame, [])
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("MLflow (http://127.0.0.1:")


@pytest.mark.integration
def test_deleted_experiment_is_a_clear_error(tmp_path: Path, results_frame: pd.DataFrame) -> None:
    import mlflow

    tracker = MlflowTracker(tmp_path / "mlflow.db")
    run_id = _log(tracker, results_frame, [])
    client = mlflow.MlflowClient(tracking_uri=tracker.tracking_uri)
    client.delete_experiment(client.get_run(run_id).info.experiment_id)
    with pytest.raises(TrackingError, match="experiment 'rag-eval' is deleted"):
        _log(tracker, results_frame, [])


# -- secrets never reach MLflow, logs or errors ------------------------------------------------

SECRET_CONFIG = "name: remote\nmodels:\n  gpt:\n    base_url: https://ana:hunter2@llm.example.com/v1?api_key=sk-zz9\n"


def test_params_and_tags_are_redacted() -> None:
    from workbench.tracking._limits import param_items, tag_items

    params = param_items(
        {
            "models": {
                "gpt": {
                    "base_url": "https://ana:hunter2@llm.example.com/v1?api_key=sk-zz9&v=2",
                    "api_key_env": "OPENAI_API_KEY",
                    "params": {"max_tokens": 64, "extra_headers": {"Authorization": "Bearer sk-zz9"}},
                }
            },
            "token": None,
        }
    )
    assert params["models.gpt.base_url"] == "https://***@llm.example.com/v1?api_key=***&v=2"
    assert params["models.gpt.api_key_env"] == "OPENAI_API_KEY"  # the name of a variable, not a secret
    assert params["models.gpt.params.max_tokens"] == "64"
    assert params["models.gpt.params.extra_headers.Authorization"] == "***"
    assert params["token"] == "None"
    tags = tag_items({"endpoint": "http://u:p@h:8080/v1", "session_token": "abc", "dataset": "toy"})
    assert tags == {"endpoint": "http://***@h:8080/v1", "session_token": "***", "dataset": "toy"}


@pytest.mark.integration
def test_tracking_uri_credentials_stay_out_of_repr_logs_and_errors(
    results_frame: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    from workbench.testing.mlflow_server import free_port

    tracker = MlflowTracker(f"http://ana:hunter2@127.0.0.1:{free_port()}")
    assert "hunter2" not in repr(tracker) and tracker.shown_uri.startswith("http://***@127.0.0.1:")
    with pytest.MonkeyPatch.context() as mp, caplog.at_level("DEBUG"):
        mp.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        mp.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
        with pytest.raises(TrackingError) as info:
            _log(tracker, results_frame, [])
        with pytest.raises(TrackingError) as ui:
            tracker.ui_command()
    for text in (str(info.value), str(ui.value), caplog.text):
        assert "hunter2" not in text
    assert str(info.value).startswith("MLflow (http://***@127.0.0.1:")


@pytest.mark.integration
def test_secrets_never_reach_the_mlflow_store(tmp_path: Path, results_frame: pd.DataFrame) -> None:
    import mlflow

    tracker = MlflowTracker(tmp_path / "mlflow.db")
    run_id = _log(
        tracker,
        results_frame,
        [],
        config_yaml=SECRET_CONFIG,
        params={"models": {"gpt": {"base_url": "https://ana:hunter2@llm.example.com/v1?api_key=sk-zz9"}}},
        tags={"endpoint": "https://ana:hunter2@llm.example.com"},
    )
    client = mlflow.MlflowClient(tracking_uri=tracker.tracking_uri)
    data = client.get_run(run_id).data
    assert data.params["models.gpt.base_url"] == "https://***@llm.example.com/v1?api_key=***"
    assert data.tags["endpoint"] == "https://***@llm.example.com"
    config_back = Path(client.download_artifacts(run_id, CONFIG_ARTIFACT, str(tmp_path))).read_text()
    assert "base_url: https://***@llm.example.com/v1?api_key=***" in config_back
    for path in tmp_path.rglob("*"):
        if path.is_file():
            data_bytes = path.read_bytes()
            assert b"hunter2" not in data_bytes and b"sk-zz9" not in data_bytes, path
