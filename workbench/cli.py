"""`python -m workbench ingest|ask|run`. A user's mistake is one line on stderr and exit 2."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from workbench.core.errors import WorkbenchError


def _workbench(args: argparse.Namespace) -> Any:
    from workbench.session import Workbench

    tracker = None
    if getattr(args, "tracking_uri", None):
        from workbench.tracking import MlflowTracker

        tracker = MlflowTracker(args.tracking_uri)
    cache = None if getattr(args, "no_cache", False) else "auto"
    return Workbench.from_yaml(args.config, tracker=tracker, cache=cache)


def cmd_ingest(args: argparse.Namespace) -> int:
    r = _workbench(args).ingest(args.source)
    print(
        f"ingested into {r.store}: {r.added} new, {r.updated} updated, {r.skipped} unchanged, {r.removed} removed; "
        f"{r.chunks} chunks written, {r.total_docs} documents / {r.total_chunks} chunks stored ({r.seconds:.1f} s)"
    )
    return 0


def _state_json(state: Any) -> dict[str, Any]:
    return {
        "answer": state.answer,
        "abstained": state.abstained,
        "route": state.route,
        "route_score": state.route_score,
        "sources": [
            {"doc_id": c.doc_id, "start": c.start, "end": c.end, "score": round(c.score, 4), "text": c.text}
            for c in state.chunks
        ],
        "verdicts": [v.model_dump(mode="json") for v in state.verdicts],
        "timings": {t.stage: round(t.seconds, 4) for t in state.timings},
        "tokens_in": state.tokens_in,
        "tokens_out": state.tokens_out,
        "cost": state.cost,
        "models": [c.endpoint for c in state.calls],
        "fallback_used": state.fallback_used,
        "tool_calls": [c.model_dump(mode="json") for c in state.tool_calls],
        "model_choice": state.model_choice.model_dump(mode="json") if state.model_choice else None,
    }


def _print_state(state: Any) -> None:
    data = _state_json(state)
    print(f"answer:  {data['answer']}")
    print(f"route:   {data['route']} (score {data['route_score'] or 0:.2f})   models: {', '.join(data['models'])}")
    print("sources:")
    for i, s in enumerate(data["sources"], 1):
        snippet = s["text"][:90].replace("\n", " ")
        print(f"  [{i}] {s['doc_id']} {s['start']}-{s['end']} score={s['score']:.3f}  {snippet}...")
    print(
        "guards:  "
        + ", ".join(
            f"{v['stage']}/{v['check']}={'TRIGGERED:' + v['action'] if v['triggered'] else 'ok'}"
            for v in data["verdicts"]
        )
    )
    print("timings: " + ", ".join(f"{k}={v * 1000:.0f}ms" for k, v in data["timings"].items()))
    print(f"tokens:  {data['tokens_in']} in / {data['tokens_out']} out, cost {data['cost']:.6f}")


def cmd_ask(args: argparse.Namespace) -> int:
    state = _workbench(args).ask(args.question)
    if args.json:
        print(json.dumps(_state_json(state), indent=2))
    else:
        _print_state(state)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    wb = _workbench(args)
    result = wb.run(args.dataset, limit=args.limit, log=not args.no_log, progress=True)
    from workbench.notebook.tables import summary_table

    print(summary_table(result.metrics).to_string())
    print(f"\nresults: {result.parquet_path}")
    if result.run_id:
        print(f"mlflow run: {result.run_id}")
        print(f"open the UI with: {wb.tracker.ui_command()}")
    return 0


def _metric_list(text: str | None) -> list[str] | None:
    return [m.strip() for m in text.split(",") if m.strip()] if text else None


def cmd_eval(args: argparse.Namespace) -> int:
    wb = _workbench(args)
    result = wb.evaluate(
        args.dataset,
        limit=args.limit,
        metrics=_metric_list(args.metrics),
        judge=args.judge,
        judge_repeats=args.judge_repeats,
        log=not args.no_log,
        progress=True,
    )
    print(result.scores.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    failures = {row.metric: row.failures for row in result.scores.itertuples() if row.failures}
    if failures:
        print(
            "judge/metric failures (not scored, not counted as 0): "
            + ", ".join(f"{k}={v}" for k, v in failures.items())
        )
    from workbench.evaluation.calibration_counts import label_lines

    for line in label_lines(result.metrics):  # only when the dataset's questions carry labels
        print(line)
    print(f"\nresults: {result.parquet_path}")
    if result.run_id:
        prompts = ", ".join(result.prompt_uris.values())
        print(f"mlflow run: {result.run_id}  ({len(result.trace_ids)} traces; prompts {prompts})")
        print(f"open the UI with: {wb.tracker.ui_command()}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from workbench.scoring_api import score_file

    report = score_file(
        args.rows, metrics=_metric_list(args.metrics), judge=args.judge, config=args.config, out=args.out, progress=True
    )
    print(report.summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.out:
        print(f"\nscored rows: {args.out}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from workbench.evaluation.compare import compare
    from workbench.tracking import MlflowTracker

    tracker = MlflowTracker(args.tracking_uri)
    comparison = compare(args.run_a, args.run_b, metrics=_metric_list(args.metrics), tracker=tracker)
    print(comparison.to_text())
    return 0


def _cache_path(args: argparse.Namespace) -> Any:
    from pathlib import Path

    from workbench.core.cache import DEFAULT_CACHE_FILE

    if args.path:
        return Path(args.path)
    if args.config:
        from workbench.core.config import load_yaml
        from workbench.core.schema import PipelineConfig

        return Path(load_yaml(PipelineConfig, args.config).store.cache)
    return Path(DEFAULT_CACHE_FILE)


def cmd_cache(args: argparse.Namespace) -> int:
    from workbench.core.cache import SqliteStageCache
    from workbench.core.errors import ConfigError

    path = _cache_path(args)
    if not path.is_file():
        if args.action == "clear":
            print(f"no stage cache at {path}; nothing to clear")
            return 0
        raise ConfigError(f"no stage cache at {path} (run a pipeline first, or pass --path/--config)")
    cache = SqliteStageCache(path)
    try:
        if args.action == "clear":
            removed = cache.clear(args.stage)
            print(f"removed {removed} entries{f' of stage {args.stage}' if args.stage else ''} from {path}")
            return 0
        info = cache.info()
        print(f"stage cache {info.path}: {info.entries} entries, {info.file_bytes / 1e6:.1f} MB on disk")
        for stage, (n, size) in info.stages.items():
            print(f"  {stage or '(unnamed)':<16} {n:>8} entries  {size / 1e6:8.2f} MB")
    finally:
        cache.close()
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from workbench.core.schema import PipelineConfig
    from workbench.sweeps.spec import SweepSpec

    model = SweepSpec if args.sweep else PipelineConfig
    print(json.dumps(model.model_json_schema(), indent=2, sort_keys=True))
    return 0


def _dataset_run_args(cmd: argparse.ArgumentParser) -> None:
    """Arguments shared by every command that runs a config over a dataset."""
    cmd.add_argument("config")
    cmd.add_argument("--dataset", required=True, help="a name under datasets/ or a folder path")
    cmd.add_argument("--limit", type=int, help="only the first N questions")
    cmd.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite:///mlflow.db)")
    cmd.add_argument("--no-log", action="store_true", help="do not log to MLflow")
    cmd.add_argument("--no-cache", action="store_true", help="run every stage, ignoring cached outputs")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    ingest = sub.add_parser("ingest", help="chunk, embed and store the corpus of a config")
    ingest.add_argument("config")
    ingest.add_argument("--source", help="a folder or JSONL corpus instead of ingestion.source")
    ingest.set_defaults(func=cmd_ingest)

    ask = sub.add_parser("ask", help="answer one question")
    ask.add_argument("config")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="machine-readable output")
    ask.add_argument("--no-cache", action="store_true", help="run every stage, ignoring cached outputs")
    ask.set_defaults(func=cmd_ask)

    run = sub.add_parser("run", help="run the pipeline over a dataset and log it")
    _dataset_run_args(run)
    run.set_defaults(func=cmd_run)

    ev = sub.add_parser("eval", help="run, score every question with CIs, and log one MLflow run")
    _dataset_run_args(ev)
    ev.add_argument("--metrics", help="comma-separated metric names (default: the offline set)")
    ev.add_argument("--judge", help="a model endpoint of the config to judge LLM metrics with")
    ev.add_argument("--judge-repeats", type=int, help="judge each item N times and report the variance")
    ev.set_defaults(func=cmd_eval)

    sc = sub.add_parser("score", help="score rows you already have (question, answer, contexts, ...)")
    sc.add_argument("rows", help="a JSONL, CSV, parquet or DuckDB file, or a served request-log folder")
    sc.add_argument("--metrics", help="comma-separated metric names (default: those the rows allow)")
    sc.add_argument("--judge", help="a model endpoint name from --config, for LLM-judged metrics")
    sc.add_argument("--config", default="experiments/quickstart.yaml", help="where the embedder and judges are")
    sc.add_argument("--out", help="write the rows with one column per metric (.jsonl, .csv or .parquet)")
    sc.set_defaults(func=cmd_score)

    schema = sub.add_parser("schema", help="print the JSON schema of pipeline configs, for editors")
    schema.add_argument("--sweep", action="store_true", help="the schema of sweep specs instead")
    schema.set_defaults(func=cmd_schema)

    cache = sub.add_parser("cache", help="show or clear the stage cache")
    cache.add_argument("action", choices=["info", "clear"])
    cache.add_argument("--stage", help="with clear: only this stage kind (e.g. generator, retriever)")
    cache.add_argument("--config", help="use the cache file of this config (store.cache)")
    cache.add_argument("--path", help="the cache file (default: .workbench/stage_cache.sqlite)")
    cache.set_defaults(func=cmd_cache)

    cmp_ = sub.add_parser("compare", help="paired, per-question comparison of two runs")
    cmp_.add_argument("run_a", help="an MLflow run id or a results file")
    cmp_.add_argument("run_b", help="an MLflow run id or a results file")
    cmp_.add_argument("--metrics", help="comma-separated metric names (default: all shared)")
    cmp_.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite:///mlflow.db)")
    cmp_.set_defaults(func=cmd_compare)

    import importlib

    # The layers on top (sweeps, bundles, serving) each own their commands.
    for module in (
        "workbench.sweeps.command",
        "workbench.bundle.command",
        "workbench.serve.command",
        "workbench.serve.keys_command",
        "workbench.serve.worker_command",
        "workbench.guard_command",
        "workbench.drift_command",
        "workbench.calibrate_command",
    ):
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from workbench.core.offline import offline_environment

    offline_environment()
    args = build_parser().parse_args(argv)
    level = logging.INFO if args.verbose else logging.ERROR
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    from workbench.core.redact import RedactingFilter

    for handler in logging.getLogger().handlers:
        # Whatever a library logs, credentials in URLs never reach the terminal or a log file.
        handler.addFilter(RedactingFilter())
    # MLflow attaches its own INFO handler; keep its chatter out of one-line output.
    logging.getLogger("mlflow").setLevel(level if args.verbose else logging.WARNING)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
