from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from workbench.core.errors import TrackingError
from workbench.tracking import read_results, read_results_db, write_results
from workbench.tracking import results as results_mod


def test_write_results_round_trips_and_adds_run_id(tmp_path: Path, results_frame: pd.DataFrame) -> None:
    before = results_frame.copy()
    path = write_results(results_frame, tmp_path / "run1" / "results.parquet", tmp_path / "r.duckdb", "run-1")

    back = read_results(tmp_path / "run1")  # a run folder works as well as the file
    assert path == tmp_path / "run1" / "results.parquet"
    assert list(back["question_id"]) == ["q1", "q2", "q3"]
    assert set(back["run_id"]) == {"run-1"}
    assert list(back["retrieved_ids"][0]) == ["d1", "d2"]
    pd.testing.assert_frame_equal(results_frame, before)  # the caller's frame is untouched
    assert "run_id" not in results_frame.columns


def test_failed_write_leaves_previous_file_and_no_temp(
    tmp_path: Path, results_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "results.parquet"
    write_results(results_frame, target, None, "run-1")
    good_bytes = target.read_bytes()

    def half_write(df: pd.DataFrame, path: Path) -> None:
        path.write_bytes(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(results_mod, "_write_parquet", half_write)
    with pytest.raises(TrackingError, match="disk full"):
        write_results(results_frame.head(1), target, None, "run-2")

    assert target.read_bytes() == good_bytes
    assert len(read_results(target)) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["results.parquet"]


def test_failed_first_write_leaves_no_file(
    tmp_path: Path, results_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    def half_write(df: pd.DataFrame, path: Path) -> None:
        path.write_bytes(b"PAR1")
        raise RuntimeError("killed")

    monkeypatch.setattr(results_mod, "_write_parquet", half_write)
    with pytest.raises(TrackingError):
        write_results(results_frame, tmp_path / "out" / "results.parquet", None, "run-1")
    assert list((tmp_path / "out").iterdir()) == []
    with pytest.raises(TrackingError, match="no results file"):
        read_results(tmp_path / "out")


def test_duckdb_append_across_runs_with_growing_columns(tmp_path: Path, results_frame: pd.DataFrame) -> None:
    db = tmp_path / "wb.duckdb"
    write_results(results_frame, tmp_path / "a.parquet", db, "run-1")
    second = results_frame.drop(columns=["latency_ms.retrieve"]).assign(
        **{"latency_ms.rerank": [3.0, 4.0, 5.0], "judge_note": [None, None, None]}
    )
    write_results(second, tmp_path / "b.parquet", db, "run-2")
    third = pd.DataFrame({"question_id": ["q9"], "judge_note": ["late text"]})
    write_results(third, tmp_path / "c.parquet", db, "run-3")

    everything = read_results_db(db)
    assert len(everything) == 7
    assert {"latency_ms.retrieve", "latency_ms.rerank", "judge_note", "run_id"} <= set(everything.columns)
    run1 = everything[everything.run_id == "run-1"]
    assert run1["latency_ms.rerank"].isna().all()
    assert run1["latency_ms.retrieve"].tolist() == [12.5, 10.0, 11.0]
    assert read_results_db(db, "run-2")["latency_ms.rerank"].tolist() == [3.0, 4.0, 5.0]
    assert read_results_db(db, "run-3")["judge_note"].tolist() == ["late text"]
    # nested cells are stored as JSON text, so the column type never depends on the run
    with duckdb.connect(str(db), read_only=True) as con:
        kind = con.execute(
            "SELECT data_type FROM information_schema.columns WHERE table_name='results' AND column_name='guard'"
        ).fetchone()
    assert kind == ("VARCHAR",)


def test_duckdb_append_is_one_transaction(tmp_path: Path, results_frame: pd.DataFrame) -> None:
    db = tmp_path / "wb.duckdb"
    write_results(results_frame, tmp_path / "a.parquet", db, "run-1")
    # a column whose values cannot be cast into the existing type fails the whole append
    bad = results_frame.assign(faithfulness=["not", "a", "number"], brand_new=[1, 2, 3])
    with pytest.raises(TrackingError, match="could not append"):
        write_results(bad, tmp_path / "b.parquet", db, "run-2")
    after = read_results_db(db)
    assert len(after) == 3
    assert "brand_new" not in after.columns


def test_bad_table_name_is_refused(tmp_path: Path, results_frame: pd.DataFrame) -> None:
    with pytest.raises(TrackingError, match="invalid DuckDB table name"):
        write_results(results_frame, tmp_path / "a.parquet", tmp_path / "x.duckdb", "r", table="x; DROP TABLE y")
