"""The writing half of `calibrate`: the new config, `calibration.json`, the printed table and
the MLflow run."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from workbench.core.errors import ConfigError, DatasetError

if TYPE_CHECKING:
    from workbench.tracking import Tracker

REPORT_FILE = "calibration.json"


def calibrated_yaml(config_path: Path, report: dict[str, Any]) -> str:
    """The original YAML with only the fitted thresholds replaced, validated as a `PipelineConfig`."""
    from workbench.core.config import validate_config
    from workbench.core.schema import PipelineConfig

    raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    for entry in report["checks"]:
        raw["guardrails"][entry["side"]][entry["index"]]["threshold"] = entry["new"]["threshold"]
    if report["router"] is not None:
        raw.setdefault("routing", {})["threshold"] = report["router"]["new"]["threshold"]
    validate_config(PipelineConfig, raw, f"{config_path} (calibrated)")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        f"# {config_path} with thresholds fitted by `python -m workbench calibrate` on {report['labels']}\n"
        f"# ({stamp}); every other value is the original's. The fit's figures: {REPORT_FILE}.\n"
    )
    return header + yaml.safe_dump(raw, sort_keys=False, allow_unicode=True)


def write_outputs(config_path: Path, out: Path, report: dict[str, Any]) -> tuple[Path, Path]:
    """Write the new config to `out` and `calibration.json` beside it."""
    text = calibrated_yaml(config_path, report)
    report_path = out.parent / REPORT_FILE
    report = report | {"new_config": str(out), "created_at": datetime.now(UTC).isoformat(timespec="seconds")}
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        report_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"{out}: cannot write it ({exc.strerror or exc})") from exc
    return out, report_path


def _ci(value: dict[str, float | None]) -> str:
    v, low, high = value["value"], value["low"], value["high"]
    if v is None:
        return "—"
    if low is None or high is None:
        return f"{v:.3f}"
    return f"{v:.3f} [{low:.3f}, {high:.3f}]"


def _row(label: str, which: str, point: dict[str, Any]) -> str:
    counts = f"{point['tp']}/{point['fp']}/{point['tn']}/{point['fn']}"
    accuracy = f"  acc {_ci(point['accuracy'])}" if "accuracy" in point else ""
    return (
        f"{label:<30} {which:<13} {point['threshold']:>9.4f}  {_ci(point['precision']):<22} "
        f"{_ci(point['recall']):<22} {_ci(point['fpr']):<22} {_ci(point['f1']):<22} {counts}{accuracy}"
    )


def table(report: dict[str, Any]) -> str:
    """The report as text: old and new threshold of every fitted check, with 95% intervals."""
    head = (
        f"{'threshold of':<30} {'at':<13} {'value':>9}  {'precision [95% CI]':<22} {'recall [95% CI]':<22} "
        f"{'FPR [95% CI]':<22} {'F1 [95% CI]':<22} TP/FP/TN/FN"
    )
    lines = [head, "-" * len(head)]
    blocks = [(f"{e['side']}/{e['name']} ({e['positives']}+/{e['negatives']}-)", e) for e in report["checks"]]
    if report["router"] is not None:
        r = report["router"]
        blocks.append((f"routing ({r['default_labelled']} default/{r['in_scope']} in)", r))
    for label, entry in blocks:
        lines.append(_row(label, "old (fit)", entry["old"]))
        lines.append(_row("", "new (fit)", entry["new"]))
        if "out_of_bag" in entry:
            oob = entry["out_of_bag"]
            lines.append(
                f"{'':<30} {'new (unseen)':<13} {'refit':>9}  {'—':<22} {_ci(oob['recall']):<22} {_ci(oob['fpr']):<22}"
            )
        if "holdout" in entry:
            lines.append(_row("", "old (holdout)", entry["holdout"]["old"]))
            lines.append(_row("", "new (holdout)", entry["holdout"]["new"]))
    if report["router"] is not None:
        lines.append("routing: positive = sent to the default route; FPR = in-scope questions sent to the default")
    lines.append(
        "'fit': on the examples the thresholds were fitted to (optimistic); 'unseen': refitted on bootstrap "
        "resamples, counted on the examples each left out (median, 95% range); --holdout for a held-out file"
    )
    if report["not_calibrated"]:
        lines.append(f"not calibrated (no score to fit): {', '.join(report['not_calibrated'])}")
    return "\n".join(lines)


def _key(name: str) -> str:
    # MLflow keys allow letters, digits, _ - . / and spaces; a repeated check is "injection#2".
    return re.sub(r"[^A-Za-z0-9_./ -]", "_", name)


def run_metrics(report: dict[str, Any]) -> dict[str, float]:
    """Old and new thresholds, and the new threshold's figures (fit and holdout), as metrics."""
    out: dict[str, float] = {}
    entries = [(f"{e['side']}.{_key(e['name'])}", e) for e in report["checks"]]
    if report["router"] is not None:
        entries.append(("routing", report["router"]))
    for prefix, entry in entries:
        out[f"{prefix}.old_threshold"] = entry["old"]["threshold"]
        out[f"{prefix}.threshold"] = entry["new"]["threshold"]
        for stat, value in entry.get("out_of_bag", {}).items():
            if value["value"] is not None:
                out[f"{prefix}.oob_{stat}"] = value["value"]
        for part, point in [("", entry["new"]), ("holdout.", entry.get("holdout", {}).get("new"))]:
            if point is None:
                continue
            for count in ("tp", "fp", "tn", "fn"):
                out[f"{prefix}.{part}{count}"] = float(point[count])
            for stat in ("precision", "recall", "fpr", "f1", "accuracy"):
                if stat in point:
                    value = point[stat]["value"]
                    out[f"{prefix}.{part}{stat}"] = math.nan if value is None else value
    return {k: v for k, v in out.items() if not math.isnan(v)}


def log_to_mlflow(tracker: Tracker, experiment: str, name: str, report: dict[str, Any], files: list[Path]) -> str:
    settings = report["settings"]
    params: dict[str, Any] = {"config": report["config"], "labels": report["labels"], **settings}
    if report["holdout"]:
        params["holdout"] = report["holdout"]
    if not files[1].is_file():
        raise ConfigError(f"{files[1]}: the calibrated config was not written")
    return tracker.log_run(
        experiment=experiment,
        run_name=f"calibrate {name}",
        config_yaml=files[1].read_text(encoding="utf-8"),
        params=params,
        metrics=run_metrics(report),
        tags={"workbench.kind": "calibrate", "config_name": name},
        table=None,
        artifacts=files,
    )
