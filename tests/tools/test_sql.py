"""The SQL tool against a real DuckDB file shaped like a run's `results.duckdb`."""

from pathlib import Path

import duckdb
import pytest

from workbench.core.errors import ToolError
from workbench.core.schema import SqlTool
from workbench.tools import ToolContext
from workbench.tools.sql import Sql


@pytest.fixture
def results(tmp_path: Path) -> Path:
    path = tmp_path / "results" / "results.duckdb"
    path.parent.mkdir()
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE results (question_id VARCHAR, route VARCHAR, latency_s DOUBLE, hit BOOLEAN)")
        con.executemany(
            "INSERT INTO results VALUES (?, ?, ?, ?)",
            [(f"q{i}", "general" if i % 3 else "structured", 0.1 * i, i % 2 == 0) for i in range(1, 31)],
        )
    return path


def _sql(root: Path, **config: object) -> Sql:
    return Sql(SqlTool(tool="sql", **config), ToolContext(root=root))  # type: ignore[arg-type]


def _run(tool: Sql, query: str, params: list | None = None) -> str:
    return tool.run(tool.args_model(query=query, params=params or [])).text


def test_a_single_value_is_the_answer(results: Path, tmp_path: Path) -> None:
    tool = _sql(tmp_path)  # the default database is results/results.duckdb under the root
    assert _run(tool, "SELECT count(*) FROM results") == "30"
    assert _run(tool, "SELECT count(*) FROM results WHERE route = ? AND hit = ?", ["structured", True]) == "5"


def test_rows_are_a_table_cut_at_the_row_limit(results: Path, tmp_path: Path) -> None:
    tool = _sql(tmp_path, max_rows=3)
    out = tool.run(tool.args_model(query="SELECT question_id, route FROM results ORDER BY latency_s"))
    assert out.text.splitlines() == [
        "question_id | route",
        "q1 | general",
        "q2 | general",
        "q3 | structured",
        "(only the first 3 rows are shown)",
    ]
    assert out.value["truncated"] and len(out.value["rows"]) == 3
    assert _run(tool, "SELECT * FROM results WHERE route = ?", ["none"]) == "no rows"


def test_parameters_are_bound_not_pasted(results: Path, tmp_path: Path) -> None:
    tool = _sql(tmp_path)
    injected = "general' OR '1'='1"
    assert _run(tool, "SELECT count(*) FROM results WHERE route = ?", [injected]) == "0"


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("DELETE FROM results", "only SELECT is allowed, got DELETE"),
        ("DROP TABLE results", "only SELECT is allowed, got DROP"),
        ("INSERT INTO results VALUES ('x', 'y', 1, true)", "only SELECT is allowed, got INSERT"),
        ("SELECT 1; DROP TABLE results", "exactly one statement is allowed, got 2"),
        ("ATTACH 'other.duckdb' AS other", "only SELECT is allowed"),
        ("COPY results TO 'out.csv'", "only SELECT is allowed"),
        ("SET enable_external_access = true", "only SELECT is allowed"),
        ("SELEC 1", "the query does not parse"),
        ("SELECT nope FROM results", "the query failed: .*nope"),
        ("SELECT * FROM missing_table", "the query failed: .*missing_table"),
    ],
)
def test_anything_but_one_select_is_refused(results: Path, tmp_path: Path, query: str, reason: str) -> None:
    with pytest.raises(ToolError, match=reason):
        _run(_sql(tmp_path), query)
    assert _run(_sql(tmp_path), "SELECT count(*) FROM results") == "30"


def test_a_select_cannot_read_other_files(results: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("token\nsk-do-not-read\n")
    with pytest.raises(ToolError, match="the query failed: .*(Permission|disabled)"):
        _run(_sql(tmp_path), f"SELECT * FROM read_csv('{secret}')")


def test_the_connection_is_read_only(results: Path, tmp_path: Path) -> None:
    # Even a statement that slipped past the SELECT check could not write.
    tool = _sql(tmp_path)
    with tool._connect() as con, pytest.raises(duckdb.Error, match="read-only"):
        con.execute("CREATE TABLE t (x INT)")


def test_a_long_query_is_interrupted(results: Path, tmp_path: Path) -> None:
    tool = _sql(tmp_path, timeout_s=0.2)
    slow = "SELECT count(*) FROM range(1000000000) a, range(1000000) b WHERE a.range * b.range = 7"
    with pytest.raises(ToolError, match="ran past 0.2 s and was stopped"):
        _run(tool, slow)


def test_a_missing_database_is_a_tool_error(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="no DuckDB file at .*nowhere.duckdb"):
        _run(_sql(tmp_path, database="nowhere.duckdb"), "SELECT 1")


def test_tables_lists_columns(results: Path, tmp_path: Path) -> None:
    assert _sql(tmp_path).tables() == {"results": ["question_id", "route", "latency_s", "hit"]}


def test_arguments_are_validated(tmp_path: Path) -> None:
    tool = _sql(tmp_path)
    with pytest.raises(ToolError, match="sql: invalid arguments: params.0"):
        tool.parse('{"query": "SELECT ?", "params": [{"nested": 1}]}')
    with pytest.raises(ToolError, match="sql: invalid arguments: query: Field required"):
        tool.parse('{"sql": "SELECT 1"}')
