"""`python -m workbench sweep SWEEP.yaml --dataset NAME_OR_PATH`: the command line of sweeps."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parser(sub: Any) -> None:
    sweep = sub.add_parser("sweep", help="run (or resume) a sweep of pipeline variants and pick a winner")
    sweep.add_argument("spec", help="a sweep spec YAML (e.g. experiments/sweeps/quickstart.yaml)")
    sweep.add_argument("--dataset", required=True, help="a name under datasets/ or a folder path")
    sweep.add_argument("--limit", type=int, help="only the first N questions")
    sweep.add_argument("--dry-run", action="store_true", help="print the variants and estimated costs; run nothing")
    sweep.add_argument("--executor", default="local", choices=["local", "ray"], help="where the work runs")
    sweep.add_argument("--retry-errors", action="store_true", help="re-run only the rows that errored")
    sweep.add_argument("--json", action="store_true", help="print one JSON object at the end")
    sweep.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite:///mlflow.db)")
    sweep.add_argument("--no-log", action="store_true", help="do not log to MLflow")
    sweep.add_argument("--no-cache", action="store_true", help="run every stage, ignoring cached outputs")
    sweep.set_defaults(func=cmd_sweep)


def _print_plan(plan: Any) -> None:
    e = plan.estimate
    print(f"sweep {plan.name} ({plan.sweep_id}): {len(plan.variants)} variants, {plan.strategy} search")
    print(f"questions: {plan.questions} search + {plan.confirm_questions} held out; {plan.done} rows already done")
    for record in plan.variants.to_dict(orient="records"):
        print(f"  {record['variant']}  {record['label']}")
    print(
        f"estimate (upper bound, no cache hits) for {plan.items} search answers: {e.model_calls} model calls, "
        f"{e.tokens} tokens, ${e.dollars:.4f}, {e.seconds / 60:.1f} min"
    )


def _print_result(result: Any) -> None:
    print(f"sweep {result.name} ({result.sweep_id}): {result.status}")
    board = result.leaderboard
    if not board.empty:
        o = result.objective
        wanted = (
            "rank",
            "variant",
            o,
            f"{o}_ci_low",
            f"{o}_ci_high",
            "error_rate",
            "cost_per_1k_questions",
            "latency_s_p95",
        )
        columns = [c for c in wanted if c in board]
        print(board[columns].to_string(index=False))
    print(f"winner: {result.winner}   recommended: {result.recommended}")
    print(result.note)
    print(f"rows: {result.rows_path}")
    if result.parent_run_id:
        print(f"MLflow parent run: {result.parent_run_id}")


def cmd_sweep(args: argparse.Namespace) -> int:
    from workbench.sweeps import plan_sweep, run_sweep

    if args.dry_run:
        plan = plan_sweep(args.spec, args.dataset, limit=args.limit)
        print(json.dumps(plan.to_json(), indent=2)) if args.json else _print_plan(plan)
        return 0
    tracker: Any = None if args.no_log else "auto"
    if args.tracking_uri and not args.no_log:
        from workbench.tracking import MlflowTracker

        tracker = MlflowTracker(args.tracking_uri)
    result = run_sweep(
        args.spec,
        args.dataset,
        limit=args.limit,
        executor=args.executor,
        tracker=tracker,
        retry_errors=args.retry_errors,
        progress=not args.json,
        cache=None if args.no_cache else "auto",
    )
    print(json.dumps(result.to_json())) if args.json else _print_result(result)
    return 0
