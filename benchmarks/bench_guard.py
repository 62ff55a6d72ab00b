"""Attack detection on held-out data: the old heuristics, the new classifier, both combined, and
prompt-guardrail's TF-IDF baseline (issue 10, section 1).

    .venv/bin/python benchmarks/bench_guard.py [--threads 1] [--limit N]

Reads `datasets/guard/test.jsonl` only (the train split never), in four slices:

- split: held-out PyRIT jailbreak templates and harmful requests, spikee wrappers and
  instructions, held-out dataset questions;
- look-alikes: generated benign look-alikes from templates never trained on;
- spikee look-alikes: spikee's 112 benign investment questions, never trained on;
- bastioncorpus: 118 attacks and 63 benign hard negatives, never trained on.

The combined check runs twice, on the embedder's torch and onnx backends (the same weights; the
quickstart uses onnx), so their latencies are compared within one run.

Each variant runs as the real check (`inspect`) one prompt at a time, with the embedder's query
cache off, so the latency is what one request pays on CPU: wall time, and the CPU time of the
calling thread (with one torch thread the embedder computes there), which other processes on a
shared machine do not inflate. `max_size` is not a detector and is left out. prompt-guardrail
needs the `guard-data` extra.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TEST = ROOT / "datasets" / "guard" / "test.jsonl"


def slice_of(row: dict) -> str:
    source = row["source"]
    if source.startswith("bastioncorpus"):
        return "bastioncorpus"
    if source == "spikee:investment-advice-fp":
        return "spikee look-alikes"
    if source.startswith("generated:lookalike"):
        return "look-alikes"
    return "split"


def variants(threads: int) -> dict[str, Callable[[str], bool]]:
    import torch

    from workbench.core.config import load_yaml
    from workbench.core.schema import AttackCheck, InjectionCheck, PipelineConfig
    from workbench.core.state import RequestState
    from workbench.guardrails import CheckContext, build_check
    from workbench.models.embedder import SentenceTransformerEmbedder

    torch.set_num_threads(threads)
    config = load_yaml(PipelineConfig, ROOT / "experiments" / "quickstart.yaml")
    state = RequestState(query="")

    def context(backend: str) -> CheckContext:
        embedder = SentenceTransformerEmbedder(config.embedder.model_copy(update={"backend": backend}), 0)
        embedder.warm_up()
        return CheckContext(side="input", embedder=embedder)

    torch_side, onnx_side = context("torch"), context("onnx")
    checks = {
        "heuristics (`injection`)": build_check(InjectionCheck(check="injection"), torch_side),
        "classifier (`attack`, heuristics: false)": build_check(
            AttackCheck(check="attack", heuristics=False), torch_side
        ),
        "combined (`attack`), torch embedder": build_check(AttackCheck(check="attack"), torch_side),
        "combined (`attack`), onnx embedder": build_check(AttackCheck(check="attack"), onnx_side),
    }
    out: dict[str, Callable[[str], bool]] = {}
    for name, check in checks.items():
        check.warm_up()
        out[name] = lambda text, c=check: c.inspect(text, state).triggered
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its pickle was saved by an older scikit-learn
            import guardify

            guardify.detect("warm up")
        out["prompt-guardrail 1.0.1 (TF-IDF + LR)"] = lambda text: guardify.detect(text)["label"] == "injection"
    except ImportError:
        print("prompt-guardrail is not installed (pip install -e '.[guard-data]'); its row is left out")
    return out


def measure(rows: list[dict], detect: Callable[[str], bool]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(blocked, wall seconds, CPU seconds of this thread) per row. With one torch thread the
    embedder computes in the calling thread, so CPU time is what the prompt costs without the
    other processes that share the machine's cores."""
    blocked, wall, cpu = np.zeros(len(rows), dtype=bool), np.zeros(len(rows)), np.zeros(len(rows))
    for i, row in enumerate(rows):
        start, start_cpu = time.perf_counter(), time.thread_time()
        blocked[i] = detect(row["text"])
        wall[i], cpu[i] = time.perf_counter() - start, time.thread_time() - start_cpu
    return blocked, wall, cpu


def pct(values: np.ndarray) -> str:
    return f"{100 * values.mean():.1f}% ({int(values.sum())}/{len(values)})" if len(values) else "—"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the embedder")
    parser.add_argument("--limit", type=int, help="every Nth row only, for a quick look")
    parser.add_argument("--out", type=Path, help="also write per-row verdicts here (JSONL)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    rows = [json.loads(line) for line in TEST.read_text().splitlines()]
    if args.limit:
        rows = rows[:: max(1, len(rows) // args.limit)]
    attack = np.array([r["label"] == "attack" for r in rows])
    slices = np.array([slice_of(r) for r in rows])
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, "
          f"torch threads {args.threads}, {len(rows)} test rows")  # fmt: skip
    header = (
        "| variant | attack recall, split | benign pass, split | look-alike pass | spikee look-alike pass "
        "| bastion recall | bastion benign pass | p50 / p95 ms | p50 / p95 ms CPU |"
    )
    lines = [header, "|" + "---|" * 9]
    verdicts: dict[str, list[bool]] = {}
    for name, detect in variants(args.threads).items():
        blocked, wall, cpu = measure(rows, detect)
        verdicts[name] = blocked.tolist()

        def part(s: str, want_attack: bool, blocked: np.ndarray = blocked) -> np.ndarray:
            mask = (slices == s) & (attack == want_attack)
            return blocked[mask] if want_attack else ~blocked[mask]

        p50, p95 = np.percentile(wall * 1000, [50, 95])
        c50, c95 = np.percentile(cpu * 1000, [50, 95])
        cells = [
            pct(part("split", True)),
            pct(part("split", False)),
            pct(part("look-alikes", False)),
            pct(part("spikee look-alikes", False)),
            pct(part("bastioncorpus", True)),
            pct(part("bastioncorpus", False)),
            f"{p50:.1f} / {p95:.1f}",
            f"{c50:.1f} / {c95:.1f}",
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    print("\n" + "\n".join(lines))
    if args.out:
        with args.out.open("w") as f:
            for i, row in enumerate(rows):
                f.write(json.dumps({**row, **{k: v[i] for k, v in verdicts.items()}}) + "\n")


if __name__ == "__main__":
    main()
