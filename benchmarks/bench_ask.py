"""`ask` latency: cold from the CLI (a new process each time) and warm in-process.

Targets on 2 cores: cold <= 15 s, warm p50 <= 1.5 s. Prints figures; gates nothing.
Run: .venv/bin/python benchmarks/bench_ask.py [CONFIG]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from workbench.session import Workbench

CONFIG = sys.argv[1] if len(sys.argv) > 1 else "experiments/quickstart.yaml"
QUESTIONS = [
    "Who picked up the remaining four Premier League packages?",
    "What year did Setanta Sports get Premier League rights?",
    "How much did Sky bid in February 2015?",
    "Which broadcaster was awarded two of the six packages?",
    "When did BSkyB's monopoly end?",
]


def cold(n: int = 3) -> list[float]:
    times = []
    for q in QUESTIONS[:n]:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "workbench", "ask", CONFIG, q, "--no-cache"], check=True, capture_output=True
        )
        times.append(time.perf_counter() - start)
    return times


def warm(rounds: int = 4) -> list[float]:
    wb = Workbench.from_yaml(CONFIG, cache=None)
    wb.warm_up()
    wb.ask(QUESTIONS[0])
    times = []
    for r in range(1, rounds + 1):
        for q in QUESTIONS:
            start = time.perf_counter()
            wb.ask(q + " " * r)
            times.append(time.perf_counter() - start)
    return times


if __name__ == "__main__":
    Workbench.from_yaml(CONFIG).ingest()
    c = cold()
    w = warm()
    print(f"config: {CONFIG}")
    print(f"ask cold (CLI, new process): median {statistics.median(c):.2f} s, max {max(c):.2f} s  (target <= 15 s)")
    q = statistics.quantiles(w, n=20)
    print(f"ask warm (in-process): p50 {statistics.median(w):.3f} s, p95 {q[-1]:.3f} s over {len(w)} asks")
