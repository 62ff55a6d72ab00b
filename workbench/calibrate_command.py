"""`python -m workbench calibrate CONFIG --labels FILE`: fit the guard checks' and the router's
thresholds to labelled examples, and write them into a new config.

Each guard check with a calibrator (`_calibrate_checks.CALIBRATIONS`: `attack`, `injection`,
`groundedness`, `safety`) scores every example carrying its label once, with the real check; the
threshold is then fitted to a target false-positive rate (default 1%) or the best F1
(`workbench.evaluation.calibration`). The router's `routing.threshold` is fitted from
route-labelled questions to the best route accuracy or a target share of in-scope questions
sent to the default (`workbench.evaluation.calibration_routes`). The labels format is in
`workbench._calibrate_labels`.

Writes the new config (the original with only the thresholds changed) and `calibration.json`
beside it, prints old and new thresholds with precision, recall, FPR and F1 and their 95%
intervals, and logs one MLflow run (experiment `calibrate`). `--holdout FILE` adds the figures
on examples the fit never saw, the honest estimate of how the thresholds will do.

It sits on top of the layers (like `guard`): it builds the config's embedder and checks.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench._calibrate_types import Settings
from workbench.core.errors import ConfigError

if TYPE_CHECKING:
    from workbench._calibrate_types import LabelledExample
    from workbench.core.protocols import Embedder
    from workbench.core.schema import PipelineConfig
    from workbench.tracking import Tracker

EXPERIMENT = "calibrate"


def add_parser(sub: Any) -> None:
    cmd = sub.add_parser("calibrate", help="fit guard and router thresholds to labelled examples")
    cmd.add_argument("config")
    cmd.add_argument(
        "--labels", required=True, help="JSONL of labelled examples (format: datasets/calibration/README.md)"
    )
    goal = cmd.add_mutually_exclusive_group()
    goal.add_argument("--target-fpr", type=float, help="guards: most recall at FPR <= this (default 0.01)")
    goal.add_argument("--objective", choices=["f1"], help="guards: the best-F1 threshold instead")
    cmd.add_argument(
        "--conservative",
        action="store_true",
        help="guards: hold the FPR's 95%% upper bound, not its estimate, to --target-fpr (needs more negatives)",
    )
    cmd.add_argument(
        "--route-objective",
        choices=["accuracy", "target"],
        default="accuracy",
        help="router: best route accuracy, or the highest threshold sending <= --route-target of "
        "in-scope questions to the default",
    )
    cmd.add_argument("--route-target", type=float, default=0.05, help="with --route-objective target")
    cmd.add_argument("--holdout", help="labelled examples not fitted on: their figures at the old and new thresholds")
    cmd.add_argument("--out", help="the new config (default: <CONFIG stem>.calibrated.yaml beside CONFIG)")
    cmd.add_argument("--min-examples", type=int, default=10, help="fewer positives or negatives is an error")
    cmd.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite:///mlflow.db)")
    cmd.add_argument("--no-log", action="store_true", help="do not log to MLflow")
    cmd.add_argument("--seed", type=int, default=0, help="of the F1 bootstrap")
    cmd.set_defaults(func=cmd_calibrate)


@dataclass
class CalibrationResult:
    """What `calibrate` produced: the report (calibration.json's content) and the files."""

    report: dict[str, Any]
    config_path: Path
    report_path: Path
    run_id: str | None = None
    warnings: list[str] = field(default_factory=list)


def default_out(config_path: Path) -> Path:
    return config_path.with_name(f"{config_path.stem}.calibrated.yaml")


def _embedder(config: PipelineConfig) -> Embedder:
    from workbench.core.paths import resolve_model_paths
    from workbench.models.embedder import SentenceTransformerEmbedder

    # Cheap until something is embedded: the weights load on first use.
    return SentenceTransformerEmbedder(resolve_model_paths(config, Path(".")).embedder)


def _read(path: str | Path | None, config: PipelineConfig) -> list[LabelledExample]:
    from workbench._calibrate_labels import read_labels

    return read_labels(Path(path), set(config.routing.routes)) if path is not None else []


def calibrate(
    config_path: str | Path,
    labels: str | Path,
    *,
    settings: Settings | None = None,
    holdout: str | Path | None = None,
    out: str | Path | None = None,
    embedder: Embedder | None = None,
    tracker: Tracker | None = None,
) -> CalibrationResult:
    """Fit, write the new config and `calibration.json` beside it, and log to `tracker`."""
    from workbench._calibrate_fit import fit_checks, fit_router
    from workbench._calibrate_report import log_to_mlflow, write_outputs
    from workbench.core.config import load_yaml
    from workbench.core.schema import PipelineConfig

    settings = (settings or Settings()).validate()
    config_path = Path(config_path)
    out_path = Path(out) if out is not None else default_out(config_path)
    if out_path.resolve() == config_path.resolve():
        raise ConfigError(f"--out {out_path} is the input config; calibrate never overwrites it, name a new file")
    config = load_yaml(PipelineConfig, config_path)
    examples, held = _read(labels, config), _read(holdout, config)
    embedder = embedder or _embedder(config)
    checks, skipped, warnings = fit_checks(config, examples, held, embedder, settings, source=str(labels))
    router = fit_router(config, examples, held, embedder, settings, warnings, source=str(labels))
    if not checks and router is None:
        raise ConfigError(
            f"{labels}: nothing to calibrate; no label matches a check of {config_path} "
            f"(input checks take 'attack', output checks 'grounded' or 'unsafe', the router 'route')"
        )
    report = {
        "config": str(config_path),
        "labels": str(labels),
        "holdout": str(holdout) if holdout is not None else None,
        "settings": vars(settings),
        "checks": checks,
        "router": router,
        "not_calibrated": skipped,
        "warnings": warnings,
    }
    config_file, report_file = write_outputs(config_path, out_path, report)
    result = CalibrationResult(report, config_file, report_file, warnings=warnings)
    if tracker is not None:
        result.run_id = log_to_mlflow(tracker, EXPERIMENT, config.name, report, [report_file, config_file])
    return result


def cmd_calibrate(args: argparse.Namespace) -> int:
    from workbench._calibrate_report import table

    settings = Settings(
        objective="f1" if args.objective == "f1" else "fpr",
        target_fpr=args.target_fpr if args.target_fpr is not None else 0.01,
        conservative=args.conservative,
        route_objective=args.route_objective,
        route_target=args.route_target,
        min_examples=args.min_examples,
        seed=args.seed,
    ).validate()
    tracker = None
    if not args.no_log:
        from workbench.tracking import MlflowTracker

        tracker = MlflowTracker(args.tracking_uri)
    result = calibrate(args.config, args.labels, settings=settings, holdout=args.holdout, out=args.out, tracker=tracker)
    print(table(result.report))
    for warning in result.warnings:
        print(f"warning: {warning}")
    print(f"\nnew config: {result.config_path}\nreport: {result.report_path}")
    if result.run_id:
        print(f"mlflow run: {result.run_id}  (open the UI with: {tracker.ui_command() if tracker else ''})")
    return 0
