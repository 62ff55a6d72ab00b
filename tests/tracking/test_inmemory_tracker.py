from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from workbench.core.errors import TrackingError
from workbench.testing.tracker import InMemoryTracker
from workbench.tracking import Tracker


def test_records_runs_like_a_store(tmp_path: Path, results_frame: pd.DataFrame) -> None:
    tracker = InMemoryTracker()
    assert isinstance(tracker, Tracker)
    artifact = tmp_path / "results.parquet"
    artifact.write_bytes(b"x")
    run_id = tracker.log_run(
        experiment="e",
        run_name="r",
        config_yaml="a: 1\n",
        params={"retrieval": {"top_k": 5}},
        metrics={"f": 1},
        tags={"t": "v"},
        table=results_frame,
        artifacts=[artifact],
    )
    run = tracker.last
    assert run.run_id == run_id
    assert run.params == {"retrieval.top_k": "5"}
    assert run.metrics == {"f": 1.0}
    assert run.table is not results_frame and len(run.table) == 3
    assert tracker.runs_in("e") == [run] and tracker.runs_in("other") == []


def test_fault_injection_and_missing_artifacts(tmp_path: Path) -> None:
    kwargs = dict(experiment="e", run_name="r", config_yaml="", params={}, metrics={}, tags={}, table=None)
    with pytest.raises(TrackingError, match="store down"):
        InMemoryTracker(fail="store down").log_run(artifacts=[], **kwargs)  # type: ignore[arg-type]
    with pytest.raises(TrackingError, match="not found"):
        InMemoryTracker().log_run(artifacts=[tmp_path / "missing"], **kwargs)  # type: ignore[arg-type]
    with pytest.raises(LookupError):
        _ = InMemoryTracker().last
