"""`python -m workbench export SOURCE --out DIR` and `python -m workbench verify DIR`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    export = sub.add_parser("export", help="export a sweep's winner, a run or a config as a verified bundle")
    export.add_argument("source", help="a sweep id, an MLflow run id, or a config YAML (with --dataset)")
    export.add_argument("--out", required=True, help="the bundle folder to write (e.g. bundle/)")
    export.add_argument("--slim", action="store_true", help="leave the index out: only its manifest and content hash")
    export.add_argument("--golden", type=int, default=5, help="golden questions to keep and replay (default 5)")
    export.add_argument("--dataset", help="the dataset (required for a config; default: the run's own)")
    export.add_argument("--limit", type=int, help="with a config: run only the first N questions")
    export.add_argument("--alias", default="candidate", help="model registry alias (default: candidate)")
    export.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite:///mlflow.db)")
    export.add_argument("--no-register", action="store_true", help="do not register in MLflow's model registry")
    export.add_argument("--force", action="store_true", help="replace a non-empty --out folder")
    export.add_argument("--json", action="store_true", help="print one JSON object")
    export.set_defaults(func=cmd_export)

    verify = sub.add_parser("verify", help="check a bundle against its manifest")
    verify.add_argument("bundle", help="the bundle folder")
    verify.add_argument("--digest", help="also require this bundle digest (e.g. from the model registry)")
    verify.set_defaults(func=cmd_verify)


def cmd_export(args: argparse.Namespace) -> int:
    from workbench.bundle.export import export_bundle

    tracker: Any = "auto"
    if args.tracking_uri:
        from workbench.tracking import MlflowTracker

        tracker = MlflowTracker(args.tracking_uri)
    report = export_bundle(
        args.source,
        args.out,
        slim=args.slim,
        golden=args.golden,
        dataset=args.dataset,
        limit=args.limit,
        alias=args.alias,
        tracker=tracker,
        register=not args.no_register,
        force=args.force,
    )
    if args.json:
        print(json.dumps(report.to_json()))
        return 0
    origin = f"sweep {report.sweep_id} winner, run {report.run_id}" if report.sweep_id else f"run {report.run_id}"
    print(f"bundle {report.path} ({'slim, ' if report.slim else ''}{origin})")
    print(f"digest:  {report.digest}")
    print(f"golden:  {report.golden} questions replayed with the evaluated retrieval and answers")
    if report.registered is not None:
        reg = report.registered
        print(f"MLflow:  {reg.name} version {reg.version}" + (f" (alias {reg.alias})" if reg.alias else ""))
    print(f"serve it with: python -m workbench serve {report.path}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from workbench.bundle.manifest import verify_bundle

    digest = verify_bundle(Path(args.bundle), expected_digest=args.digest)
    print(f"ok {digest}")
    return 0
