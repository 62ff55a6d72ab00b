"""`sql`: one parameterised SELECT over a DuckDB file, read-only, with a row limit and a timeout.

Four walls, because the query text comes from a model: the connection is read-only; it has no
file system access beyond its own database (no `read_csv('/etc/passwd')`), locked so the query
cannot turn that back on; only a single SELECT statement is accepted; values are bound as `?`
parameters, never pasted into the text.
"""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import duckdb
from pydantic import Field

from workbench.core.schema import SqlTool
from workbench.tools.base import Tool, ToolArgs, ToolContext, ToolResult, at_most

Param = str | int | float | bool | None


class SqlArgs(ToolArgs):
    query: Annotated[str, at_most(4000)] = Field(
        description="one SELECT statement; write each value as a ? placeholder and give it in params"
    )
    params: Annotated[list[Param], at_most(50)] = Field([], description="the values of the ? placeholders, in order")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.date | dt.datetime | dt.time | dt.timedelta):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def render_rows(columns: list[str], rows: list[tuple[Any, ...]], truncated: bool) -> str:
    """One value alone; otherwise a header line and one `|`-separated line per row."""
    if len(columns) == 1 and len(rows) == 1 and not truncated:
        return str(rows[0][0])
    if not rows:
        return "no rows"
    lines = [" | ".join(columns), *(" | ".join(str(v) for v in row) for row in rows)]
    if truncated:
        lines.append(f"(only the first {len(rows)} rows are shown)")
    return "\n".join(lines)


class Sql(Tool):
    name = "sql"
    description = "Runs one read-only SELECT over the run's DuckDB tables, with ? parameters."
    args_model = SqlArgs
    config: SqlTool

    def __init__(self, config: SqlTool, context: ToolContext | None = None) -> None:
        super().__init__(config, context)

    @property
    def path(self) -> Path:
        return self.context.root / Path(self.config.database).expanduser()

    def _connect(self) -> Any:
        if not self.path.is_file():
            raise self.fail(f"no DuckDB file at {self.path}")
        config: dict[str, str | bool | int | float | list[str]] = {
            "enable_external_access": False,
            "lock_configuration": True,
        }
        try:
            return duckdb.connect(str(self.path), read_only=True, config=config)
        except duckdb.Error as exc:
            raise self.fail(f"cannot open {self.path}: {exc}") from exc

    def _check_statement(self, query: str) -> None:
        try:
            statements = duckdb.extract_statements(query)
        except duckdb.Error as exc:
            raise self.fail(f"the query does not parse: {_first_line(exc)}") from exc
        if len(statements) != 1:
            raise self.fail(f"exactly one statement is allowed, got {len(statements)}")
        if statements[0].type != duckdb.StatementType.SELECT:
            raise self.fail(f"only SELECT is allowed, got {statements[0].type.name}")

    def tables(self) -> dict[str, list[str]]:
        """Each table's columns, to tell a model what it can query (e.g. in a route prompt)."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT table_name, column_name FROM information_schema.columns ORDER BY table_name, ordinal_position"
            ).fetchall()
        out: dict[str, list[str]] = {}
        for table, column in rows:
            out.setdefault(table, []).append(column)
        return out

    def run(self, args: SqlArgs) -> ToolResult:
        self._check_statement(args.query)
        limit = self.config.max_rows
        with self._connect() as con:
            # DuckDB has no statement timeout; interrupting the connection is its equivalent.
            timer = threading.Timer(self.config.timeout_s, con.interrupt)
            timer.start()
            try:
                cursor = con.execute(args.query, args.params)
                columns = [d[0] for d in cursor.description or ()]
                rows = cursor.fetchmany(limit + 1)
            except duckdb.InterruptException as exc:
                raise self.fail(f"the query ran past {self.config.timeout_s:g} s and was stopped") from exc
            except duckdb.Error as exc:
                raise self.fail(f"the query failed: {_first_line(exc)}") from exc
            finally:
                timer.cancel()
        truncated = len(rows) > limit
        rows = [tuple(_jsonable(v) for v in row) for row in rows[:limit]]
        value = {"columns": columns, "rows": [list(r) for r in rows], "truncated": truncated}
        return ToolResult(value=value, text=render_rows(columns, rows, truncated))


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
