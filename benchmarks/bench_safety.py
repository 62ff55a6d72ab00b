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


def _pct(seconds: list[float], q: float) -> float:
    return float(np.percentile(np.array(seconds) * 1000, q))


def run_check(rows: list[dict], *, toxicity: bool) -> tuple[np.ndarray, list[float], list[float]]:
    """Verdicts and per-answer times of the check, and, interleaved in the same loop, the times of
    embedding one short question (what the router already pays per request): on a shared machine
    their ratio is steadier than either figure."""
    config = SafetyCheck(check="safety", action="flag", toxicity=toxicity)
    model = embedder()
    check = build_check(config, CheckContext(side="output", embedder=model))
    check.warm_up()
    state = RequestState(query="q")
    check.inspect("warm up the embedder on one answer.", state)
    flagged, times, reference = [], [], []
    for i, row in enumerate(rows):
        start = time.perf_counter()
        flagged.append(check.inspect(row["text"], state).triggered)
        times.append(time.perf_counter() - start)
        start = time.perf_counter()
        model.embed([f"When did the Normans first reach Normandy, question {i}?"])
        reference.append(time.perf_counter() - start)
    return np.array(flagged), times, reference


def run_plain(rows: list[dict], detect) -> tuple[np.ndarray, list[float], list[float]]:  # type: ignore[no-untyped-def]
    flagged, times = [], []
    for row in rows:
        start = time.perf_counter()
        flagged.append(bool(detect(row["text"])))
        times.append(time.perf_counter() - start)
    return np.array(flagged), times, []


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
    header = "| detector | harmful recall | benign pass | look-alike pass | PyRIT benign pass | p50 / p95 ms/answer |"
    print(header)
    print("|---|---|---|---|---|---|")
    for name, (flagged, times, _) in results.items():
        print(
            f"| {name} | {flagged[harmful].mean():.1%} | {(~flagged[benign]).mean():.1%} | "
            f"{(~flagged[lookalike]).mean():.1%} | {(~flagged[hard]).mean():.1%} | "
            f"{_pct(times, 50):.1f} / {_pct(times, 95):.1f} |"
        )
    _, times, reference = results["safety"]
    print(
        f"\nsame loop, embedding one short question: p50 {_pct(reference, 50):.1f} ms, "
        f"p95 {_pct(reference, 95):.1f} ms;"
    )
    print(f"safety check / question embedding, p50 ratio {_pct(times, 50) / _pct(reference, 50):.1f}x")
    lengths = np.array([len(r["text"]) for r in rows])
    print(f"answer length: median {np.median(lengths):.0f} chars, p95 {np.percentile(lengths, 95):.0f}")
    flagged = results["safety"][0]
    print("\nsafety, by source (harmful: recall; others: pass rate):")
    for source in sorted({r["source"] for r in rows}):
        mask = np.array([r["source"].startswith(source) for r in rows])
        for label, part in (("harmful", mask & harmful), ("benign", mask & ~harmful)):
            if part.any():
                rate = flagged[part].mean() if label == "harmful" else (~flagged[part]).mean()
                print(f"  {source:<44} {label:<8} {rate:.1%} of {part.sum()}")


if __name__ == "__main__":
    main()
