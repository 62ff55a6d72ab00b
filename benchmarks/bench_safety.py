"""The `safety` output check on the held-out side of `datasets/safety/`, against simple baselines.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_safety.py [--test datasets/safety/test.jsonl]

Prints, for each detector: harmful recall; the pass rates of the repository's benign answers,
of the generated look-alikes and of PyRIT's benign answers (refusals and safe completions to
harmful requests, the hardest negatives); and p95 latency per answer on CPU, one answer per
call as the output guard runs. Detectors:

- `safety`: the check as shipped (`SafetyGuard.inspect`, embedding + toxicity head);
- `safety (embedding only)`: the shipped embedding-only head (`toxicity: false`);
- `profanity only`: the toxicity model alone (alt-profanity-check's, P >= 0.5);
- `keywords`: any word of a short list of harm keywords.

Only the test split is read; `train_safety.py` never sees it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from train_guard import embedder  # noqa: E402

from workbench.core.schema import SafetyCheck  # noqa: E402
from workbench.core.state import RequestState  # noqa: E402
from workbench.guardrails import CheckContext, build_check  # noqa: E402

KEYWORDS = re.compile(
    r"\b(kill|murder|bomb|explosive|weapon|gun|poison|drug|meth|cocaine|hack|malware|steal|suicide|"
    r"self-harm|overdose|attack|terror|rape|slur|hate)\w*",
    re.IGNORECASE,
)


def _p95(seconds: list[float]) -> float:
    return float(np.percentile(np.array(seconds) * 1000, 95))


def run_check(rows: list[dict], *, toxicity: bool) -> tuple[np.ndarray, list[float]]:
    config = SafetyCheck(check="safety", action="flag", toxicity=toxicity)
    check = build_check(config, CheckContext(side="output", embedder=embedder()))
    check.warm_up()
    state = RequestState(query="q")
    check.inspect("warm up the embedder on one answer.", state)
    flagged, times = [], []
    for row in rows:
        start = time.perf_counter()
        flagged.append(check.inspect(row["text"], state).triggered)
        times.append(time.perf_counter() - start)
    return np.array(flagged), times


def run_plain(rows: list[dict], detect) -> tuple[np.ndarray, list[float]]:  # type: ignore[no-untyped-def]
    flagged, times = [], []
    for row in rows:
        start = time.perf_counter()
        flagged.append(bool(detect(row["text"])))
        times.append(time.perf_counter() - start)
    return np.array(flagged), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test", type=Path, default=REPO / "datasets" / "safety" / "test.jsonl")
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.test.read_text().splitlines() if line.strip()]
    harmful = np.array([r["label"] == 1 for r in rows])
    lookalike = np.array([r["kind"] == "lookalike" for r in rows])
    pyrit = np.array([r["source"].startswith("pyrit") for r in rows])
    benign = ~harmful & ~lookalike & ~pyrit
    hard = ~harmful & pyrit
    print(f"{len(rows)} test answers: {harmful.sum()} harmful, {benign.sum()} benign (repo datasets), ", end="")
    print(f"{lookalike.sum()} look-alikes, {hard.sum()} PyRIT benign")

    from workbench.guardrails._safety_head import load_safety_head

    profanity = load_safety_head(None, toxicity=True).profanity
    results = {
        "safety": run_check(rows, toxicity=True),
        "safety (embedding only)": run_check(rows, toxicity=False),
        "profanity only": run_plain(rows, lambda t: profanity.score([t])[0] >= 0.5),
        "keywords": run_plain(rows, KEYWORDS.search),
    }
    header = "| detector | harmful recall | benign pass | look-alike pass | PyRIT benign pass | p95 ms/answer |"
    print(header)
    print("|---|---|---|---|---|---|")
    for name, (flagged, times) in results.items():
        print(
            f"| {name} | {flagged[harmful].mean():.1%} | {(~flagged[benign]).mean():.1%} | "
            f"{(~flagged[lookalike]).mean():.1%} | {(~flagged[hard]).mean():.1%} | {_p95(times):.1f} |"
        )
    flagged = results["safety"][0]
    print("\nsafety, by source (harmful: recall; others: pass rate):")
    for source in sorted({r["source"] for r in rows if not r["source"].startswith("generated")} | {"generated/"}):
        mask = np.array([r["source"].startswith(source) for r in rows])
        for label, part in (("harmful", mask & harmful), ("benign", mask & ~harmful)):
            if part.any():
                rate = flagged[part].mean() if label == "harmful" else (~flagged[part]).mean()
                print(f"  {source:<44} {label:<8} {rate:.1%} of {part.sum()}")


if __name__ == "__main__":
    main()
