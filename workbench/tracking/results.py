"""Per-question results on disk: one parquet file per run, and a DuckDB table across runs.

The parquet file is written atomically (temp file in the same folder, then `os.replace`),
so a file with the final name is always complete. The DuckDB append is one transaction; a
run whose frame has columns the table lacks (say a new per-stage timing) adds them first.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.core.errors import TrackingError
from workbench.tracking._duckdb import duckdb_transaction
from workbench.tracking._frame import serialise_nested

if TYPE_CHECKING:
    import pandas as pd

RESULTS_FILE = "results.parquet"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _check_table(table: str) -> None:
    if not _IDENT.match(table):
        raise TrackingError(f"invalid DuckDB table name {table!r}: use letters, digits and underscores")


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    """The one place bytes are written; a seam so tests can fail mid-write."""
    df.to_parquet(path, index=False)


def write_parquet_atomic(df: pd.DataFrame, path: str | Path) -> Path:
    """Write `df` to `path` so that `path` is either the old file or the complete new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _write_parquet(df, tmp)
        os.replace(tmp, path)
    except Exception as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise TrackingError(f"{path}: could not write results ({type(exc).__name__}: {exc})") from exc
    return path


def append_duckdb(df: pd.DataFrame, duckdb_path: str | Path, table: str = "results") -> int:
    """Append `df` to `table` in one transaction, adding any new columns; returns rows written."""
    _check_table(table)
    duckdb_path = Path(duckdb_path)
    frame = serialise_nested(df)
    qt = _quote(table)
    with duckdb_transaction(duckdb_path, f"append to table '{table}'") as con:
        con.register("_wb_incoming", frame)
        # A column with no values is inferred as INTEGER; VARCHAR accepts whatever later runs put there.
        empty = {str(c) for c in frame.columns if frame[c].isna().all()}
        incoming = [
            (name, "VARCHAR" if name in empty else dtype)
            for name, dtype, *_ in con.execute("DESCRIBE SELECT * FROM _wb_incoming").fetchall()
        ]
        columns = ", ".join(f"{_quote(name)} {dtype}" for name, dtype in incoming)
        con.execute(f"CREATE TABLE IF NOT EXISTS {qt} ({columns})")
        have = {row[0] for row in con.execute(f"DESCRIBE {qt}").fetchall()}
        for name, dtype in incoming:
            if name not in have:
                con.execute(f"ALTER TABLE {qt} ADD COLUMN {_quote(name)} {dtype}")
        con.execute(f"INSERT INTO {qt} BY NAME SELECT * FROM _wb_incoming")
    return len(frame)


def write_results(
    df: pd.DataFrame,
    parquet_path: str | Path,
    duckdb_path: str | Path | None,
    run_id: str,
    table: str = "results",
) -> Path:
    """Write one run's per-question results: parquet (atomic) and, if given, the DuckDB table.

    A `run_id` column is added (the caller's frame is not modified). Returns the parquet path.
    """
    if duckdb_path is not None:
        _check_table(table)
    frame = df.assign(run_id=run_id)
    path = write_parquet_atomic(frame, parquet_path)
    if duckdb_path is not None:
        append_duckdb(frame, duckdb_path, table)
    return path


def read_results(path_or_run: str | Path) -> pd.DataFrame:
    """Read a run's results from a parquet file, or from the run folder holding `results.parquet`."""
    import pandas as pd

    path = Path(path_or_run)
    if path.is_dir():
        path = path / RESULTS_FILE
    if not path.is_file():
        raise TrackingError(f"{path}: no results file")
    try:
        return pd.read_parquet(path)
    except Exception as exc:
        raise TrackingError(f"{path}: cannot read results ({type(exc).__name__}: {exc})") from exc


def read_results_db(duckdb_path: str | Path, run_id: str | None = None, table: str = "results") -> pd.DataFrame:
    """Read the results table across runs (or one run) from the DuckDB file."""
    import duckdb

    _check_table(table)
    if not Path(duckdb_path).is_file():
        raise TrackingError(f"{duckdb_path}: no results database")
    try:
        with duckdb.connect(str(duckdb_path), read_only=True) as con:
            sql = f"SELECT * FROM {_quote(table)}"
            if run_id is None:
                return con.execute(sql).df()
            return con.execute(sql + " WHERE run_id = ?", [run_id]).df()
    except duckdb.Error as exc:
        raise TrackingError(f"{duckdb_path}: cannot read table '{table}' ({exc})") from exc
