"""Does a calibrated threshold keep its target FPR on data it was not fitted on? (issue 10 §3)

    .venv/bin/python benchmarks/bench_calibrate.py [--limit N] [--threads 1] [--splits 50] [--rescore]

Scores `datasets/guard/train.jsonl` and `test.jsonl` once with the quickstart's `attack` check
(the real check, through `calibrate`'s own scoring, `_calibrate_checks.score_checks`; the scores
are cached in `.workbench/` for reruns), then:

1. fits the threshold on the TRAIN split to 1% FPR (what `python -m workbench calibrate
   experiments/quickstart.yaml --labels <train split as labels>` does), to 5% and to best F1,
   and reports the held-out TEST split's FPR and recall at each, beside the shipped threshold;
2. because the head was trained on the train split (its scores there are more confident than on
   any new data), also fits on half of the test split's groups and checks the other half:
   calibration on data the model never saw, as `calibrate` should be used. One seeded split in
   the first table; `--splits` random group splits in the second, to show how often the
   target holds on the unseen half.

Then the router: `routing.threshold` of `experiments/routing.yaml` fitted on
`datasets/routes/train.jsonl` (best route accuracy; at most 5% of in-scope questions sent to the
default) and checked on `test.jsonl`, beside the config's own.

Every figure is recounted with the check's own rule (`score >= threshold`); intervals are 95%
Wilson intervals over the held-out examples.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GUARD = ROOT / "datasets" / "guard"
CACHE = ROOT / ".workbench" / "bench_calibrate_scores.json"


def _rows(path: Path, limit: int | None) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return random.Random(0).sample(rows, min(limit, len(rows))) if limit else rows


def _scores(rows: dict[str, list[dict]], rescore: bool) -> tuple[dict[str, list[float]], float, float]:
    """{split: attack score per row}, the shipped threshold, and the scoring time (0 if cached)."""
    from workbench._calibrate_checks import score_checks
    from workbench._calibrate_labels import LabelledExample
    from workbench.calibrate_command import _embedder
    from workbench.core.config import load_yaml
    from workbench.core.schema import PipelineConfig
    from workbench.guardrails._attack_head import shipped_path

    key = hashlib.sha256(
        json.dumps({k: [r["id"] for r in v] for k, v in rows.items()}).encode() + shipped_path().read_bytes()
    ).hexdigest()
    if CACHE.is_file() and not rescore:
        cached = json.loads(CACHE.read_text())
        if cached["key"] == key:
            return cached["scores"], cached["shipped"], 0.0
    config = load_yaml(PipelineConfig, ROOT / "experiments" / "quickstart.yaml")
    embedder = _embedder(config)
    start = time.perf_counter()
    scores, shipped = {}, 0.0
    for split, split_rows in rows.items():
        examples = [
            LabelledExample(id=r["id"], text=r["text"], labels={"attack": r["label"] == "attack"}) for r in split_rows
        ]
        [scored] = [s for s in score_checks(config, examples, embedder)[0] if s.name == "attack"]
        assert scored.ids == [r["id"] for r in split_rows]  # the attack check scores every prompt
        scores[split], shipped = scored.scores, scored.old_threshold
    seconds = time.perf_counter() - start
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    CACHE.write_text(json.dumps({"key": key, "scores": scores, "shipped": shipped}))
    return scores, shipped, seconds


def _pct(interval: object) -> str:
    value, low, high = interval.value, interval.low, interval.high  # type: ignore[attr-defined]
    return f"{value:.1%} [{low:.1%}, {high:.1%}]"


def _halves(rows: list[dict], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Masks of two halves of the rows with no group on both sides."""
    names = sorted({r["group"] for r in rows})
    random.Random(seed).shuffle(names)
    first = set(names[: len(names) // 2])
    a = np.array([r["group"] in first for r in rows])
    return a, ~a


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="only N rows of each split (a quick check)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--seed", type=int, default=10, help="of the first table's test halves")
    parser.add_argument("--splits", type=int, default=50, help="random test halves in the second table")
    parser.add_argument("--rescore", action="store_true", help="ignore the cached scores")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    from workbench._calibrate_checks import threshold_bounds
    from workbench.core.schema import AttackCheck
    from workbench.evaluation.calibration import fit_threshold, operating_point, out_of_bag

    os.chdir(ROOT)
    rows = {"train": _rows(GUARD / "train.jsonl", args.limit), "test": _rows(GUARD / "test.jsonl", args.limit)}
    raw, shipped, scoring_s = _scores(rows, args.rescore)
    scores = {k: np.asarray(v) for k, v in raw.items()}
    positive = {k: np.array([r["label"] == "attack" for r in v]) for k, v in rows.items()}
    bounds = threshold_bounds(AttackCheck(check="attack"))

    def refit(s: np.ndarray, p: np.ndarray, **objective: object) -> float:
        return fit_threshold(s, p, polarity="above", bounds=bounds, **objective)  # type: ignore[arg-type]

    def fit(split: str, mask: np.ndarray | None = None, **objective: object) -> float:
        s, p = (scores[split], positive[split]) if mask is None else (scores[split][mask], positive[split][mask])
        return refit(s, p, **objective)

    a, b = _halves(rows["test"], args.seed)
    every = np.ones(len(scores["train"]), dtype=bool)
    whole_test = np.ones(len(scores["test"]), dtype=bool)
    # (label, threshold, fitted on (split, mask), checked on (name, mask of the test split))
    # (label, the fit's objective or None for the shipped threshold, fitted on, checked on)
    half_a, half_b = ("test", a), ("test half B", b)
    runs = [
        ("train, FPR ≤ 1%", {"target_fpr": 0.01}, ("train", every), ("test", whole_test)),
        ("train, FPR ≤ 5%", {"target_fpr": 0.05}, ("train", every), ("test", whole_test)),
        ("train, best F1", {"objective": "f1"}, ("train", every), ("test", whole_test)),
        (
            "train, FPR upper bound ≤ 1%",
            {"target_fpr": 0.01, "conservative": True},
            ("train", every),
            ("test", whole_test),
        ),
        ("shipped (head's own)", None, ("train", every), ("test", whole_test)),
        ("test half A, FPR ≤ 1%", {"target_fpr": 0.01}, half_a, half_b),
        ("test half A, FPR upper bound ≤ 1%", {"target_fpr": 0.01, "conservative": True}, half_a, half_b),
        ("test half A, best F1", {"objective": "f1"}, half_a, half_b),
        ("shipped, on half B", None, half_a, half_b),
    ]
    print(
        f"date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.1f}; train {len(scores['train'])} ({int(positive['train'].sum())} attacks), "
        f"test {len(scores['test'])} ({int(positive['test'].sum())} attacks), halves A {int(a.sum())} / B "
        f"{int(b.sum())}; scoring {scoring_s:.0f} s{' (cached)' if not scoring_s else ''}"
    )
    print()
    columns = ["threshold", "value", "FPR where fitted", "out-of-bag FPR estimate", "held-out set"]
    columns += ["held-out FPR [95% CI]", "held-out recall [95% CI]", "held-out F1", "held-out TP/FP/TN/FN"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for label, objective, (fit_split, fit_mask), (held_name, held_mask) in runs:
        fs, fp = scores[fit_split][fit_mask], positive[fit_split][fit_mask]
        threshold = shipped if objective is None else fit(fit_split, fit_mask, **objective)
        unseen = "—"
        if objective is not None:
            oob = out_of_bag(fs, fp, lambda s, p, o=objective: refit(s, p, **o), "above", seed=0)["fpr"]
            unseen = f"{oob.value:.1%} [{oob.low:.1%}, {oob.high:.1%}]"
        fitted = operating_point(fs, fp, threshold, "above")
        out = operating_point(scores["test"][held_mask], positive["test"][held_mask], threshold, "above")
        c = out.confusion
        print(
            f"| {label} | {threshold:.4f} | {fitted.fpr.value:.2%} | {unseen} | {held_name} | {_pct(out.fpr)} "
            f"| {_pct(out.recall)} | {out.f1.value:.3f} | {c.tp}/{c.fp}/{c.tn}/{c.fn} |"
        )

    # Many random group halves of the test split: fit on one, check the other.
    start = time.perf_counter()
    header = ["fitted so that", "held-out FPR median [min, max]", "halves with held-out FPR ≤ 1%", "≤ 2%"]
    header += ["held-out recall median [min, max]", "threshold median [min, max]"]
    header += ["out-of-bag FPR estimate, median", "held-out FPR inside the out-of-bag 95% range"]
    table = []
    for conservative in (False, True):
        held_fpr, held_recall, thresholds, inside, oob_median = [], [], [], [], []
        for seed in range(args.splits):
            a, b = _halves(rows["test"], 1000 + seed)
            t = fit("test", a, target_fpr=0.01, conservative=conservative)
            point = operating_point(scores["test"][b], positive["test"][b], t, "above")
            oob = out_of_bag(
                scores["test"][a],
                positive["test"][a],
                lambda s, p, c=conservative: refit(s, p, target_fpr=0.01, conservative=c),
                "above",
                resamples=100,
                seed=seed,
            )["fpr"]
            inside.append(oob.low <= point.fpr.value <= oob.high)
            oob_median.append(oob.value)
            held_fpr.append(point.fpr.value)
            held_recall.append(point.recall.value)
            thresholds.append(t)
        fpr, recall = np.array(held_fpr), np.array(held_recall)
        table.append(
            [
                "FPR upper bound ≤ 1% (--conservative)" if conservative else "FPR ≤ 1% (default)",
                f"{np.median(fpr):.2%} [{fpr.min():.2%}, {fpr.max():.2%}]",
                f"{np.mean(fpr <= 0.01):.0%}",
                f"{np.mean(fpr <= 0.02):.0%}",
                f"{np.median(recall):.1%} [{recall.min():.1%}, {recall.max():.1%}]",
                f"{np.median(thresholds):.3f} [{min(thresholds):.3f}, {max(thresholds):.3f}]",
                f"{np.median(oob_median):.2%}",
                f"{np.mean(inside):.0%}",
            ]
        )
    fit_ms = (time.perf_counter() - start) * 1000 / max(2 * args.splits, 1)
    print()
    print(f"{args.splits} random group halves of the test split, fitted on one half, checked on the other:")
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for cells in table:
        print("| " + " | ".join(cells) + " |")
    print(f"\none fit, its figures and a 100-resample out-of-bag estimate: {fit_ms:.0f} ms")


def router(seed: int) -> None:
    """`routing.threshold` of `experiments/routing.yaml`, fitted on `datasets/routes/train.jsonl`
    and checked on `test.jsonl` (the route set of issue 10 §4), beside the config's own."""
    from workbench._calibrate_fit import _route_scores
    from workbench._calibrate_labels import LabelledExample
    from workbench.calibrate_command import _embedder
    from workbench.core.config import load_yaml
    from workbench.core.schema import PipelineConfig
    from workbench.evaluation.calibration_routes import fit_route_threshold, route_operating_point
    from workbench.routing.semantic import SemanticRouter

    config = load_yaml(PipelineConfig, ROOT / "experiments" / "routing.yaml")
    semantic = SemanticRouter(config.routing, _embedder(config))
    default, shipped = config.routing.default, config.routing.threshold
    data = {}
    for split in ("train", "test"):
        rows = _rows(ROOT / "datasets" / "routes" / f"{split}.jsonl", None)
        examples = [LabelledExample(id=r["id"], text=r["text"], route=r["intent"]) for r in rows]
        data[split] = _route_scores(semantic, examples)
    fits = [
        ("train, best accuracy", fit_route_threshold(*data["train"], default=default)),
        (
            "train, ≤ 5% in-scope to default",
            fit_route_threshold(*data["train"], default=default, objective="target", target_rate=0.05),
        ),
        ("routing.yaml's own", shipped),
    ]
    in_scope = sum(label != default for label in data["test"][2])
    print()
    print(
        f"Router: experiments/routing.yaml (default {default!r}), train {len(data['train'][2])} / test "
        f"{len(data['test'][2])} questions ({in_scope} in scope on test):"
    )
    print()
    columns = ["threshold", "value", "train accuracy", "test accuracy [95% CI]"]
    columns += ["test in-scope sent to default [95% CI]", "test out-of-scope caught [95% CI]"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for label, threshold in fits:
        fitted = route_operating_point(*data["train"], default=default, threshold=threshold, seed=seed)
        held = route_operating_point(*data["test"], default=default, threshold=threshold, seed=seed)
        print(
            f"| {label} | {threshold:.4f} | {fitted.accuracy.value:.1%} | {_pct(held.accuracy)} "
            f"| {_pct(held.binary.fpr)} | {_pct(held.binary.recall)} |"
        )


if __name__ == "__main__":
    main()
    if (ROOT / "datasets" / "routes" / "train.jsonl").is_file() and (ROOT / "experiments" / "routing.yaml").is_file():
        router(seed=0)
