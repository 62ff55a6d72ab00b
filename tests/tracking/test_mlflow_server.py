from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from workbench.testing.mlflow_server import mlflow_server
from workbench.tracking import MlflowTracker
from workbench.tracking.mlflow_tracker import CONFIG_ARTIFACT, TABLE_ARTIFACT


@pytest.mark.integration
@pytest.mark.slow
def test_log_run_over_http_to_a_real_server(tmp_path: Path, results_frame: pd.DataFrame) -> None:
    import mlflow

    with mlflow_server(tmp_path / "server") as url:
        tracker = MlflowTracker(url)
        run_id = tracker.log_run(
            experiment="over-http",
            run_name="served",
            config_yaml="name: served\n",
            params={"retrieval": {"top_k": 3}},
            metrics={"recall_at_5": 0.5},
            tags={"dataset": "toy"},
            table=results_frame,
            artifacts=[],
        )
        client = mlflow.MlflowClient(tracking_uri=url)
        run = client.get_run(run_id)
        assert run.data.params == {"retrieval.top_k": "3"}
        assert run.data.metrics == {"recall_at_5": 0.5}
        assert run.data.tags["dataset"] == "toy"
        assert {a.path for a in client.list_artifacts(run_id)} >= {CONFIG_ARTIFACT, TABLE_ARTIFACT}
        assert len(tracker.load_table(run_id)) == 3

    # the server proxied artifacts into its own folder, and wrote its store there
    assert (tmp_path / "server" / "mlflow.db").is_file()
    assert any(p.name == TABLE_ARTIFACT for p in (tmp_path / "server" / "artifacts").rglob("*"))
