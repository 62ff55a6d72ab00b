"""One DuckDB write transaction, with failures as one-line `TrackingError`s."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workbench.core.errors import TrackingError


@contextlib.contextmanager
def duckdb_transaction(path: Path, what: str) -> Iterator[Any]:
    """Open `path` (creating its folder), yield a connection inside BEGIN, commit on success,
    roll back on any error, always close. `what` names the write in the error message."""
    import duckdb

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path))
    except duckdb.Error as exc:
        raise TrackingError(f"{path}: cannot open DuckDB file ({exc})") from exc
    try:
        con.begin()
        try:
            yield con
            con.commit()
        except Exception:
            con.rollback()
            raise
    except duckdb.Error as exc:
        raise TrackingError(f"{path}: could not {what} ({exc})") from exc
    finally:
        con.close()
