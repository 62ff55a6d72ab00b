"""A cold `ask` without the stage cache: wall time and peak memory over fresh processes, and where
the time goes.

    python benchmarks/bench_cold_ask.py                 # 5 fresh processes of the CLI, then 3 broken down
    python benchmarks/bench_cold_ask.py -n 9 --breakdown 5

1. `python -m workbench ask CONFIG QUESTION --json --no-cache`, N times, each in a new process:
   median/min/max wall time, peak RSS (the child's own maxrss), and the per-stage timings the
   returned state carries (a stage's first call includes loading what it uses).
2. One more such process under `-X importtime`: total import time and the slowest packages
   the program imports itself.
3. M fresh processes that run the same ask step by step, timing each part on its own: the
   workbench imports, the heavy libraries the stages import, the session, opening the index
   (ingest finds the corpus unchanged), each stage's model load (`warm_up`), the LLM load, and
   then the stages of the ask itself, warm.

The index is built once before timing (`ingest`, as `make quickstart` does). Load average is
printed before and after: compare runs only at like loads. Nothing here gates a test.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "Who picked up the remaining four Premier League packages?"
# Libraries the ask path imports lazily (the stages import them on first use); timed one by one in
# the breakdown so that "model load" below is loading only. A missing one is skipped.
HEAVY = [
    "numpy",
    "pandas",
    "pyarrow",
    "duckdb",
    "torch",
    "transformers",
    "sentence_transformers",
    "llama_cpp",
    "llama_index.core",
    "bm25s",
    "Stemmer",
    "spacy",
    "presidio_analyzer",
    "presidio_anonymizer",
    "jsonschema",
]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    # The workbench of this tree, also for the step-by-step child (which runs from benchmarks/).
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def _uptime() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


def run_measured(cmd: list[str]) -> tuple[float, float, str, str]:
    """Wall seconds, the child's own peak RSS in MB (from wait4), stdout, stderr."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Read the pipes in threads so a full pipe never blocks the child, then reap it with wait4.
    chunks: dict[str, str] = {}

    def drain(name: str, stream: object) -> None:
        chunks[name] = stream.read()  # type: ignore[attr-defined]

    readers = [threading.Thread(target=drain, args=(n, s)) for n, s in (("out", proc.stdout), ("err", proc.stderr))]
    for t in readers:
        t.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    for t in readers:
        t.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{chunks.get('err', '')[-2000:]}")
    return wall, usage.ru_maxrss / 1024, chunks["out"], chunks["err"]


def importtime(stderr: str) -> tuple[float, list[tuple[str, float]], set[str]]:
    """Total import seconds (sum of self times), cumulative seconds of the packages imported at
    the top of the tree (by the program itself), and every module imported."""
    total = 0.0
    top: dict[str, float] = {}
    names: set[str] = set()
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if not m:
            continue
        self_us, cum_us, indent, name = int(m.group(1)), int(m.group(2)), len(m.group(3)), m.group(4)
        total += self_us / 1e6
        names.add(name)
        if indent == 1:
            root = name.split(".")[0]
            top[root] = top.get(root, 0.0) + cum_us / 1e6
    return total, sorted(top.items(), key=lambda kv: -kv[1]), names


def child(config: str, question: str, heavy: list[str]) -> None:
    """One cold ask, step by step; prints a JSON object of seconds per part."""
    t0 = time.perf_counter()
    parts: dict[str, float] = {}

    def mark(name: str, since: float) -> float:
        now = time.perf_counter()
        parts[name] = round(now - since, 3)
        return now

    import importlib

    import workbench.cli  # noqa: F401  (what `python -m workbench` imports first)
    from workbench.session import Workbench

    t = mark("import workbench (cli, session)", t0)
    for name in heavy:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
        t = mark(f"import {name}", t)
    wb = Workbench.from_yaml(config, cache=None)
    t = mark("session (config, no cache)", t)
    wb.embedder.warm_up()  # type: ignore[attr-defined]
    t = mark("load: embedder (sentence-transformers)", t)
    pipeline = wb.pipeline  # opens the index of the config's corpus: `ingest` finds it unchanged
    t = mark("open index + build pipeline", t)

    def warm(stages: list[object], prefix: str) -> float:
        nonlocal t
        for stage in stages:
            label = f"{prefix}{getattr(stage, 'name', type(stage).__name__)}"
            routes = getattr(stage, "routes", None)  # a route switch: warm each route's own stages
            if isinstance(routes, dict) and routes and all(hasattr(sub, "stages") for sub in routes.values()):
                for route, sub in routes.items():
                    warm(list(sub.stages), f"{label}/{route}/")
                continue
            stage.warm_up()  # type: ignore[attr-defined]
            t = mark(f"load: {label}", t)
        return t

    warm(list(pipeline.stages), "")
    wb.pool.warm_up()  # anything the stages did not load (nothing, normally)
    t = mark("load: remaining endpoints", t)
    state = wb.ask(question)
    t = mark("ask (all stages, warm)", t)
    for timing in state.timings:
        parts[f"  stage {timing.stage}"] = round(timing.seconds, 3)
    wb.close()
    parts["total in process"] = round(time.perf_counter() - t0, 3)
    import resource

    parts["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps({"parts": parts, "answer": state.answer}))


def _median_table(rows: list[dict[str, float]]) -> list[tuple[str, float, float, float]]:
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    out = []
    for k in keys:
        vals = [row[k] for row in rows if k in row]
        out.append((k, statistics.median(vals), min(vals), max(vals)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="experiments/quickstart.yaml")
    parser.add_argument("--question", default=QUESTION)
    parser.add_argument("-n", type=int, default=5, help="fresh CLI processes to time")
    parser.add_argument("--breakdown", type=int, default=3, help="fresh step-by-step processes")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--heavy", default=",".join(HEAVY), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.config, args.question, [m for m in args.heavy.split(",") if m])
        return

    py = sys.executable
    print(f"python {py}; {os.cpu_count()} cores; before: {_uptime()}")
    run_measured([py, "-m", "workbench", "ingest", args.config])  # untimed: the index exists, as after quickstart
    cli = [py, "-m", "workbench", "ask", args.config, args.question, "--json", "--no-cache"]

    # What the ask path imports, once under -X importtime (which slows imports a little).
    wall, _, _, err = run_measured([py, "-X", "importtime", *cli[1:]])
    total, top, imported = importtime(err)

    walls, rss, stage_rows = [], [], []
    for _ in range(args.n):
        wall_i, peak, out, _ = run_measured(cli)
        walls.append(wall_i)
        rss.append(peak)
        data = json.loads(out)
        stage_rows.append(data["timings"])
    print(f"\n1. cold `ask --no-cache`, {args.n} fresh processes (answer: {data['answer']!r})")
    print(f"   wall     median {statistics.median(walls):6.2f} s   min {min(walls):6.2f}   max {max(walls):6.2f}")
    print(f"   peak RSS median {statistics.median(rss):6.0f} MB  min {min(rss):6.0f}   max {max(rss):6.0f}")
    print("   per-stage timings from the returned state (first call includes the stage's loads):")
    for k, med, lo, hi in _median_table(stage_rows):
        print(f"     {k:<28} median {med:6.2f} s   [{lo:.2f}, {hi:.2f}]")

    print(f"\n2. imports (one process under -X importtime, {wall:.1f} s wall): {total:.2f} s importing in all;")
    print("   cumulative seconds of what the program imports itself (the stages import lazily):")
    for name, secs in top[:12]:
        print(f"     {name:<28} {secs:6.2f} s")

    heavy = [m for m in HEAVY if m in imported]
    rows, answers = [], []
    for _ in range(args.breakdown):
        cmd = [
            py,
            __file__,
            "--child",
            "--config",
            args.config,
            "--question",
            args.question,
            "--heavy",
            ",".join(heavy),
        ]
        _, _, out, _ = run_measured(cmd)
        data = json.loads(out)
        rows.append(data["parts"])
        answers.append(data["answer"])
    print(f"\n3. step by step, {args.breakdown} fresh processes (answers: {sorted(set(answers))})")
    print("   libraries the ask path imports, one by one in this order, then loads, then the ask itself, warm:")
    for k, med, lo, hi in _median_table(rows):
        unit = "MB" if k.endswith("_mb") else "s "
        print(f"     {k:<48} median {med:7.2f} {unit}  [{lo:.2f}, {hi:.2f}]")
    print(f"\nafter: {_uptime()}")


if __name__ == "__main__":
    main()
