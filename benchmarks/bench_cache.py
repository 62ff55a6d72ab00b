"""The stage cache's cost and payoff: overhead per stage, and re-running an unchanged eval.

1. Per stage, over N questions of squad_disfl: the stage's time with no cache, on a cold cache
   (key + miss + store), and on a warm cache (key + hit). Overhead = cold - none, per question.
2. `eval` of the same N questions twice in one session: the second run is all cache hits.
   Also from a fresh session (a new process would see the same), which reopens the cache file.

Prints figures; gates nothing. Ratios are taken within one run, since the machine is shared.
Run: .venv/bin/python benchmarks/bench_cache.py [CONFIG] [N]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from workbench.core.cache import SqliteStageCache
from workbench.core.stage import Pipeline
from workbench.session import Workbench
from workbench.testing.tracker import InMemoryTracker

CONFIG = sys.argv[1] if len(sys.argv) > 1 else "experiments/extractive.yaml"
N = int(sys.argv[2]) if len(sys.argv) > 2 else 40


def _per_stage(frame) -> dict[str, float]:  # type: ignore[no-untyped-def]
    return {c.removeprefix("t_"): float(frame[c].median()) for c in frame.columns if c.startswith("t_")}


def _instrument() -> dict[str, list[float]]:
    """Time the cache's own work per stage kind: key, lookup (+ apply) and store."""
    spent: dict[str, list[float]] = {}
    key, hit, store = Pipeline._key, Pipeline._hit, Pipeline._store

    def timed(fn, label):  # type: ignore[no-untyped-def]
        def wrapper(self, *args):  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            try:
                return fn(self, *args)
            finally:
                kind = args[0].kind if label != "hit" else "lookup"
                spent.setdefault(f"{label}:{kind}", []).append(time.perf_counter() - start)

        return wrapper

    Pipeline._key = timed(key, "key")  # type: ignore[method-assign]
    Pipeline._hit = timed(hit, "hit")  # type: ignore[method-assign]
    Pipeline._store = timed(store, "store")  # type: ignore[method-assign]
    return spent


def stage_overhead(folder: Path) -> None:
    cache_file = folder / "overhead.sqlite"
    none = Workbench.from_yaml(CONFIG, cache=None, tracker=InMemoryTracker())
    none.run("squad_disfl", limit=N, log=False)  # warm models and the index
    base = _per_stage(none.run("squad_disfl", limit=N, log=False).frame)
    none.close()
    cached = Workbench.from_yaml(CONFIG, cache=SqliteStageCache(cache_file), tracker=InMemoryTracker())
    spent = _instrument()
    cold = _per_stage(cached.run("squad_disfl", limit=N, log=False).frame)
    cold_ops = {k: statistics.median(v) for k, v in spent.items()}
    spent.clear()
    warm = _per_stage(cached.run("squad_disfl", limit=N, log=False).frame)
    warm_ops = {k: statistics.median(v) for k, v in spent.items()}
    cached.close()
    print(f"per-stage median seconds per question, {N} questions, config {CONFIG}")
    print(f"{'stage':<16}{'no cache':>10}{'cold':>10}{'overhead':>10}{'warm hit':>10}")
    for stage in base:
        overhead = cold.get(stage, 0.0) - base[stage]
        print(
            f"{stage:<16}{base[stage] * 1e3:>8.2f}ms{cold.get(stage, 0) * 1e3:>8.2f}ms"
            f"{overhead * 1e3:>8.2f}ms{warm.get(stage, 0) * 1e3:>8.2f}ms"
        )
    print("the cache's own work, median per call (cold run: key + miss + store; warm: key + hit):")
    kinds = sorted({k.split(":", 1)[1] for k in cold_ops if k.startswith("store:")})
    for kind in kinds:
        key_ms = cold_ops.get(f"key:{kind}", 0) * 1e3
        print(f"  {kind:<16} key {key_ms:.3f} ms  store {cold_ops[f'store:{kind}'] * 1e3:.3f} ms")
    print(
        f"  lookup (any stage): miss {cold_ops.get('hit:lookup', 0) * 1e3:.3f} ms, "
        f"hit + apply {warm_ops.get('hit:lookup', 0) * 1e3:.3f} ms"
    )


def rerun_eval(folder: Path) -> None:
    cache_file = folder / "eval.sqlite"
    wb = Workbench.from_yaml(CONFIG, cache=SqliteStageCache(cache_file), tracker=InMemoryTracker())
    wb.warm_up()
    times = []
    for _ in range(2):
        start = time.perf_counter()
        result = wb.evaluate("squad_disfl", limit=N, log=False)
        times.append(time.perf_counter() - start)
    hit_rate = result.metrics.get("stage_cache_hit_rate", float("nan"))
    wb.close()
    fresh = Workbench.from_yaml(CONFIG, cache=SqliteStageCache(cache_file), tracker=InMemoryTracker())
    start = time.perf_counter()
    fresh.evaluate("squad_disfl", limit=N, log=False)
    fresh_s = time.perf_counter() - start
    fresh.close()
    print(
        f"eval of {N} questions: first {times[0]:.2f} s, unchanged re-run {times[1]:.2f} s "
        f"({times[1] / times[0]:.1%} of the first; stage-cache hit rate {hit_rate:.0%}); "
        f"re-run from a fresh session (models load again) {fresh_s:.2f} s"
    )


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        stage_overhead(Path(tmp))
        rerun_eval(Path(tmp))
    print(f"(median of per-question times; load average {statistics.fmean(__import__('os').getloadavg()):.2f})")
