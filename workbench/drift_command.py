"""`python -m workbench drift REFERENCE CURRENT`: has the traffic, or how the pipeline treats
it, moved away from a reference?

REFERENCE and CURRENT are each a run's results, a dataset or a served request log (see
`workbench._drift_sources`). The command compares
- the questions' embeddings (MMD, permutation p-value),
- route shares, each guard check's trigger share and the outcome shares (blocked,
  abstained, ...),
- the distribution of every numeric metric both sides have (latency, tokens, cost, scores),
and writes `report.json`, `report.md` and PNG plots to `--out`; with `--tracking-uri` it logs
the figures and the report to MLflow. P-values are Holm-adjusted over all tests; a test is
flagged when its adjusted p is below `--threshold` and its effect reaches `--min-effect`.

As a scheduled check over a bundle's request log (cron), compare the last day with what came
before, or with the bundle's evaluation run, and let the exit code speak:

    python -m workbench drift bundle/var/requests/ bundle/var/requests/ \\
        --reference-until 24h --since 24h --out var/drift/$(date +%F) --fail-on-drift

It sits on top of the layers: it builds the config's embedder and hands vectors to the
statistics in `workbench.evaluation.drift`.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.errors import DatasetError

# numpy, pandas and scipy are imported inside the functions: the CLI builds this parser on
# every command, and only `drift` needs them.
if TYPE_CHECKING:
    import numpy as np

    from workbench._drift_sources import Source
    from workbench.core.protocols import Embedder
    from workbench.evaluation.drift import DriftTest
    from workbench.tracking import Tracker

EXPERIMENT = "drift"
EXIT_DRIFT = 1


def add_parser(sub: Any) -> None:
    cmd = sub.add_parser("drift", help="compare two runs, datasets or request logs for drift")
    cmd.add_argument("reference", help="a run's results (.parquet), a dataset, or a request log (folder or .duckdb)")
    cmd.add_argument("current", help="the same kinds as REFERENCE")
    cmd.add_argument("--out", default="drift-report", help="report folder (report.json, report.md, plots)")
    cmd.add_argument("--config", default="experiments/quickstart.yaml", help="the config whose embedder to use")
    cmd.add_argument("--threshold", type=float, default=0.05, help="flag at Holm-adjusted p below this")
    cmd.add_argument("--min-effect", type=float, default=0.0, help="and only if the effect is at least this")
    cmd.add_argument("--metrics", help="comma-separated numeric columns (default: all both sides have)")
    cmd.add_argument("--since", help="CURRENT request log: only the last DURATION (e.g. 24h)")
    cmd.add_argument("--reference-until", help="REFERENCE request log: only rows older than DURATION")
    cmd.add_argument("--permutations", type=int, default=1000, help="permutations of the embedding test")
    cmd.add_argument("--min-rows", type=int, default=20, help="fewer questions on a side is an error")
    cmd.add_argument("--seed", type=int, default=0)
    cmd.add_argument("--tracking-uri", help="log the figures and report to this MLflow store")
    cmd.add_argument("--fail-on-drift", action="store_true", help="exit 1 when drift is flagged")
    cmd.set_defaults(func=cmd_drift)


@dataclass
class DriftReport:
    flagged: bool
    tests: list[DriftTest]
    data: dict[str, Any]  # what report.json holds
    files: list[Path] = field(default_factory=list)
    run_id: str | None = None

    def metrics(self) -> dict[str, float]:
        """The figures as MLflow metrics: `drift_flagged`, then per test p, adjusted p, effect."""
        out = {"drift_flagged": float(self.flagged), "drift_tests": float(len(self.tests))}
        for test in self.tests:
            out[f"{test.name}.p_value"] = test.p_value
            out[f"{test.name}.p_adjusted"] = float(test.p_adjusted if test.p_adjusted is not None else 1.0)
            out[f"{test.name}.effect"] = test.effect
            out[f"{test.name}.flagged"] = float(test.flagged)
        return out


MAX_SAMPLES = 1000  # questions embedded per side; `evaluation.drift.MAX_SAMPLES` caps the test too


def _sample(source: Source, limit: int, seed: int) -> list[str]:
    import numpy as np

    questions = source.frame["question"].tolist()
    if len(questions) <= limit:
        return questions
    picked = np.random.default_rng(seed).choice(len(questions), size=limit, replace=False)
    return [questions[i] for i in sorted(picked)]


def _share_tests(reference: Source, current: Source, skipped: list[dict[str, str]]) -> list[DriftTest]:
    from workbench._drift_sources import OUTCOMES
    from workbench.evaluation.drift import share_test

    ref, cur = reference.frame, current.frame
    tests: list[DriftTest] = []
    if "route" in ref and "route" in cur and (ref["route"].notna().any() or cur["route"].notna().any()):
        fill = "(none)"
        tests.append(share_test(ref["route"].fillna(fill), cur["route"].fillna(fill), name="route"))
    else:
        skipped.append({"name": "route", "reason": "routes are not recorded on both sides"})
    if reference.has_guards and current.has_guards:
        ref_guards = ref["guards"].dropna()
        cur_guards = cur["guards"].dropna()
        checks = sorted(set().union(*ref_guards, *cur_guards))
        for check in checks:
            tests.append(
                share_test((check in g for g in ref_guards), (check in g for g in cur_guards), name=f"guard.{check}")
            )
        if not checks:
            skipped.append({"name": "guard", "reason": "no guard check triggered on either side"})
    else:
        skipped.append({"name": "guard", "reason": "guard verdicts are not recorded on both sides"})
    for outcome in OUTCOMES:
        if outcome in ref and outcome in cur:
            a, b = ref[outcome].dropna().astype(bool), cur[outcome].dropna().astype(bool)
            if len(a) and len(b):
                tests.append(share_test(a, b, name=f"outcome.{outcome}"))
    return tests


def _metric_tests(
    reference: Source, current: Source, wanted: list[str] | None, seed: int, skipped: list[dict[str, str]]
) -> list[DriftTest]:
    from workbench.evaluation.drift import distribution_test

    shared = [m for m in reference.metrics() if m in set(current.metrics())]
    if wanted is not None:
        unknown = [m for m in wanted if m not in shared]
        if unknown:
            raise DatasetError(
                f"--metrics: {', '.join(unknown)} not numeric on both sides; both have: {', '.join(shared) or 'none'}"
            )
        shared = wanted
    tests = []
    for name in shared:
        try:
            tests.append(
                distribution_test(reference.frame[name], current.frame[name], name=f"metric.{name}", seed=seed)
            )
        except ValueError as exc:
            skipped.append({"name": f"metric.{name}", "reason": str(exc)})
    return tests


def compare_sources(
    reference: Source,
    current: Source,
    *,
    embedder: Embedder,
    threshold: float = 0.05,
    min_effect: float = 0.0,
    metrics: list[str] | None = None,
    permutations: int = 1000,
    seed: int = 0,
    max_samples: int = MAX_SAMPLES,
) -> tuple[DriftReport, dict[str, np.ndarray]]:
    """Every test between two loaded sources, flagged; and the embeddings the test used."""
    from workbench.evaluation.drift import flag, mmd_test

    skipped: list[dict[str, str]] = []
    # The cheap tests first: a wrong --metrics name fails before anything is embedded.
    started = time.perf_counter()
    others = _share_tests(reference, current, skipped) + _metric_tests(reference, current, metrics, seed, skipped)
    others_s = time.perf_counter() - started
    started = time.perf_counter()
    ref_q, cur_q = _sample(reference, max_samples, seed), _sample(current, max_samples, seed + 1)
    vectors = {"reference": embedder.embed(ref_q), "current": embedder.embed(cur_q)}
    embedded = time.perf_counter()
    embeddings = mmd_test(
        vectors["reference"], vectors["current"], permutations=permutations, seed=seed, name="embeddings"
    )
    tests = [embeddings, *others]
    flagged = flag(tests, alpha=threshold, min_effect=min_effect)
    data = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "reference": {"source": reference.label, "kind": reference.kind, "rows": len(reference.frame)},
        "current": {"source": current.label, "kind": current.kind, "rows": len(current.frame)},
        "threshold": {"alpha": threshold, "min_effect": min_effect, "correction": "holm"},
        "flagged": flagged,
        "flagged_tests": [t.name for t in tests if t.flagged],
        "embedder": str(getattr(embedder, "fingerprint", type(embedder).__name__)),
        "seconds": {"embed": embedded - started, "tests": others_s + time.perf_counter() - embedded},
        # The permutation null is for the plot; thousands of numbers do not belong in the JSON.
        "tests": [t.to_dict() | {"detail": {k: v for k, v in t.detail.items() if k != "null"}} for t in tests],
        "skipped": skipped,
    }
    return DriftReport(flagged, tests, data), vectors


def drift(
    reference: str,
    current: str,
    *,
    embedder: Embedder,
    out: str | Path = "drift-report",
    since: str | None = None,
    reference_until: str | None = None,
    min_rows: int = 20,
    tracker: Tracker | None = None,
    **options: Any,
) -> DriftReport:
    """Load both sources, compare them (`options` go to `compare_sources`), write the report
    folder `out` and, with `tracker`, log one run of experiment `drift`."""
    from workbench._drift_report import write_report
    from workbench._drift_sources import load_source, parse_duration

    ref = load_source(reference, until=parse_duration(reference_until) if reference_until else None)
    cur = load_source(current, since=parse_duration(since) if since else None)
    for side, source in (("reference", ref), ("current", cur)):
        if len(source.frame) < min_rows:
            raise DatasetError(
                f"{side} {source.label}: {len(source.frame)} questions, fewer than --min-rows {min_rows}"
            )
    report, vectors = compare_sources(ref, cur, embedder=embedder, **options)
    report.data["window"] = {"since": since, "reference_until": reference_until}
    frames = {"reference": ref.frame, "current": cur.frame}
    report.files = write_report(report.data, report.tests, vectors, Path(out), frames)
    if tracker is not None:
        import yaml

        settings: dict[str, Any] = {
            "reference": reference,
            "current": current,
            "since": since,
            "reference_until": reference_until,
        }
        settings |= {k: v for k, v in options.items() if isinstance(v, int | float | str | list)}
        report.run_id = tracker.log_run(
            experiment=EXPERIMENT,
            run_name=f"drift {Path(reference).name or reference} vs {Path(current).name or current}",
            config_yaml=yaml.safe_dump(settings, sort_keys=False),
            params={k: v for k, v in settings.items() if v is not None},
            metrics=report.metrics(),
            tags={"workbench.kind": "drift", "workbench.drift_flagged": str(report.flagged).lower()},
            table=None,
            artifacts=report.files,
        )
    return report


def _embedder(config_path: str) -> Embedder:
    from workbench.core.config import load_yaml
    from workbench.core.paths import resolve_model_paths
    from workbench.core.schema import PipelineConfig
    from workbench.models.embedder import SentenceTransformerEmbedder

    config = load_yaml(PipelineConfig, config_path)
    return SentenceTransformerEmbedder(resolve_model_paths(config, Path(".")).embedder)


def cmd_drift(args: argparse.Namespace) -> int:
    from workbench.core.errors import ConfigError

    if not 0 < args.threshold < 1:
        raise ConfigError(f"--threshold must be a p-value between 0 and 1, got {args.threshold}")
    if args.permutations < 1 or args.min_rows < 2:
        raise ConfigError("--permutations must be at least 1 and --min-rows at least 2")
    tracker = None
    if args.tracking_uri:
        from workbench.tracking import MlflowTracker

        tracker = MlflowTracker(args.tracking_uri)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    report = drift(
        args.reference,
        args.current,
        embedder=_embedder(args.config),
        out=args.out,
        since=args.since,
        reference_until=args.reference_until,
        min_rows=args.min_rows,
        tracker=tracker,
        threshold=args.threshold,
        min_effect=args.min_effect,
        metrics=metrics,
        permutations=args.permutations,
        seed=args.seed,
    )
    verdict = "DRIFT: " + ", ".join(report.data["flagged_tests"]) if report.flagged else "no drift flagged"
    print(f"{len(report.tests)} tests, {verdict} -> {Path(args.out) / 'report.md'}")
    if report.run_id:
        print(f"MLflow run {report.run_id}")
    return EXIT_DRIFT if report.flagged and args.fail_on_drift else 0
