"""Drift (issue 10 §7): false-positive rate and power of the embedding test on real questions,
and what it costs.

Every question of squad_disfl (1,997) and knowledge_conflicts (300) is embedded once with the
quickstart config's MiniLM. Then, per sample size n (questions per side) and scenario, the MMD
permutation test (`workbench.evaluation.drift.mmd_test`) runs on fresh random samples:
- no drift: reference and current are disjoint random draws of squad_disfl questions;
- new topics: squad_disfl questions from paragraphs on one side of a random paragraph split
  against the other (same style, different subjects);
- 10% / 30% / 100% shift: current is that share of knowledge_conflicts questions (Natural
  Questions, lower-case web queries) and the rest squad_disfl.
The rate of p < alpha is the false-positive rate (no drift) or the power (the others). Then
the runtime of one test at each n, and of the whole command at its cap (1,000 per side).

Prints figures; gates nothing.
Run: .venv/bin/python benchmarks/bench_drift.py [REPEATS]
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from workbench.core.config import load_yaml
from workbench.core.schema import PipelineConfig
from workbench.evaluation.drift import mmd_test
from workbench.models.embedder import SentenceTransformerEmbedder

REPEATS = int(sys.argv[1]) if len(sys.argv) > 1 else 100
SIZES = (25, 50, 100, 200)
ALPHA = 0.05
PERMUTATIONS = 500
SHIFTS = {"10% shift": 0.1, "30% shift": 0.3, "100% shift": 1.0}


def _rows(dataset: str) -> list[dict]:  # type: ignore[type-arg]
    path = Path("datasets") / dataset / "questions.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _draw(rng: np.random.Generator, pool: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n indices from `pool`, and what is left of it."""
    picked = rng.choice(len(pool), size=n, replace=False)
    return pool[picked], np.delete(pool, picked)


def main() -> None:
    squad, kc = _rows("squad_disfl"), _rows("knowledge_conflicts")
    embedder = SentenceTransformerEmbedder(load_yaml(PipelineConfig, "experiments/quickstart.yaml").embedder)
    embedder.warm_up()
    started = time.perf_counter()
    vs = embedder.embed([q["question"] for q in squad])
    vk = embedder.embed([q["question"] for q in kc])
    embed_s = time.perf_counter() - started
    docs = np.array([q["gold_doc_ids"][0] for q in squad])
    unique_docs = np.unique(docs)
    print(f"machine: {platform.processor() or platform.machine()}, {platform.python_version()}")
    print(f"embedded {len(squad) + len(kc)} questions in {embed_s:.1f} s ({(len(squad) + len(kc)) / embed_s:.0f}/s)")
    print(f"repeats {REPEATS}, permutations {PERMUTATIONS}, alpha {ALPHA}\n")

    rates: dict[str, dict[int, float]] = {}
    seconds: dict[int, list[float]] = {n: [] for n in SIZES}
    rng = np.random.default_rng(2026)
    everything = np.arange(len(squad))
    for n in SIZES:
        for scenario in ("no drift", "new topics", *SHIFTS):
            rejected = 0
            for rep in range(REPEATS):
                if scenario == "new topics":
                    half = set(rng.permutation(unique_docs)[: len(unique_docs) // 2])
                    side = np.array([d in half for d in docs])
                    ref, _ = _draw(rng, everything[side], n)
                    cur_idx, _ = _draw(rng, everything[~side], n)
                    x, y = vs[ref], vs[cur_idx]
                else:
                    ref, rest = _draw(rng, everything, n)
                    shifted = round(n * SHIFTS.get(scenario, 0.0))
                    cur_idx, _ = _draw(rng, rest, n - shifted)
                    kc_idx = rng.choice(len(vk), size=shifted, replace=False)
                    x, y = vs[ref], np.vstack([vs[cur_idx], vk[kc_idx]])
                t0 = time.perf_counter()
                result = mmd_test(x, y, permutations=PERMUTATIONS, seed=rep)
                seconds[n].append(time.perf_counter() - t0)
                rejected += result.p_value < ALPHA
            rates.setdefault(scenario, {})[n] = rejected / REPEATS

    print("| scenario | " + " | ".join(f"n={n}" for n in SIZES) + " |")
    print("|---" * (len(SIZES) + 1) + "|")
    for scenario, by_n in rates.items():
        print(f"| {scenario} | " + " | ".join(f"{by_n[n]:.0%}" for n in SIZES) + " |")
    print("\nrate of p < alpha (no drift: false-positive rate; otherwise power)")
    print("\n| n per side | MMD test median | p95 |")
    print("|---|---|---|")
    for n in SIZES:
        print(f"| {n} | {1000 * np.median(seconds[n]):.1f} ms | {1000 * np.quantile(seconds[n], 0.95):.1f} ms |")

    # The whole command at the cap: two sources of 1,000+ questions, sampled to 1,000 each.
    from workbench.drift_command import drift

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        report = drift("squad_disfl", "knowledge_conflicts", embedder=embedder, out=Path(tmp) / "r", min_rows=2)
        total = time.perf_counter() - t0
    spent = report.data["seconds"]
    print(
        f"\n`drift squad_disfl knowledge_conflicts` (1,000 vs 300, 1,000 permutations, report + plots): "
        f"{total:.1f} s (embedding {spent['embed']:.1f} s, tests {spent['tests']:.1f} s); "
        f"flagged: {', '.join(report.data['flagged_tests'])}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        same = drift("squad_disfl", "squad_disfl", embedder=embedder, out=Path(tmp) / "r", min_rows=2)
        total = time.perf_counter() - t0
    print(
        f"`drift squad_disfl squad_disfl` (1,000 vs 1,000 of the same 1,997): {total:.1f} s "
        f"(tests {same.data['seconds']['tests']:.1f} s); embeddings p = {same.tests[0].p_value:.3f}, "
        f"flagged: {same.data['flagged_tests'] or 'none'}"
    )


if __name__ == "__main__":
    main()
