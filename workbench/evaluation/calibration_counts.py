"""Confusion counts of the guards and the router on a run whose questions carry labels.

A dataset question may say `expected_blocked` (should the pipeline refuse it?) and
`expected_route`. On the labelled rows of a results frame this gives:

- `guard_labels.blocked.{tp,fp,tn,fn,precision,recall,fpr}`: the request was blocked (by any
  check) against `expected_blocked`;
- `guard_labels.input.<check>.{...}`: each input check's trigger against `expected_blocked`,
  over the rows where that check ran (a block by an earlier check stops the later ones; a
  repeated check is numbered `injection#2`, as in `guard`);
- `route_accuracy` and `route_labelled`: the chosen route against `expected_route`.

Rows without labels contribute nothing, and a run without any labels gets no such metrics.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from workbench.evaluation.calibration import Confusion

LABEL_COLUMNS = ("expected_blocked", "expected_route")


def confusion_metrics(prefix: str, confusion: Confusion) -> dict[str, float]:
    out = {f"{prefix}.{k}": float(v) for k, v in confusion.counts().items()}
    for name in ("precision", "recall", "fpr"):
        value = getattr(confusion, name)
        if not math.isnan(value):
            out[f"{prefix}.{name}"] = value
    return out


def _input_triggers(verdicts: Any) -> dict[str, bool]:
    """{check name: triggered} of the input checks that ran on one request."""
    if not isinstance(verdicts, str):
        return {}
    out: dict[str, bool] = {}
    for verdict in json.loads(verdicts):
        if not str(verdict["stage"]).startswith("input"):
            continue
        name, n = verdict["check"], 2
        while name in out:
            name, n = f"{verdict['check']}#{n}", n + 1
        out[name] = bool(verdict["triggered"])
    return out


def label_metrics(df: pd.DataFrame) -> dict[str, float]:
    """The labelled rows' confusion counts and route accuracy (see the module docstring)."""
    out: dict[str, float] = {}
    if "expected_blocked" in df:
        rows = df[df["expected_blocked"].notna()]
        if len(rows):
            expected = rows["expected_blocked"].astype(bool).to_numpy()
            blocked = rows["blocked"].fillna(False).astype(bool).to_numpy()
            out |= confusion_metrics("guard_labels.blocked", Confusion.of(blocked, expected))
            per_check: dict[str, tuple[list[bool], list[bool]]] = {}
            column = rows["verdicts"] if "verdicts" in rows else pd.Series([None] * len(rows))
            for verdicts, label in zip(column, expected, strict=True):
                for name, fired in _input_triggers(verdicts).items():
                    per_check.setdefault(name, ([], []))
                    per_check[name][0].append(fired)
                    per_check[name][1].append(bool(label))
            for name, (fired_list, labels) in sorted(per_check.items()):
                key = name.replace("#", "_")  # MLflow keys allow no '#'
                out |= confusion_metrics(f"guard_labels.input.{key}", Confusion.of(fired_list, labels))
    if "expected_route" in df:
        rows = df[df["expected_route"].notna()]
        if len(rows):
            out["route_labelled"] = float(len(rows))
            out["route_accuracy"] = float((rows["route"] == rows["expected_route"]).mean())
    return out


def label_lines(metrics: dict[str, float]) -> list[str]:
    """The label metrics of a run as a few readable lines (none when the run had no labels)."""
    lines = []
    prefixes = sorted({k.rsplit(".", 1)[0] for k in metrics if k.startswith("guard_labels.")})
    for prefix in prefixes:
        counts = " ".join(f"{k.upper()}={metrics[f'{prefix}.{k}']:.0f}" for k in ("tp", "fp", "tn", "fn"))
        rates = ", ".join(
            f"{k} {metrics[f'{prefix}.{k}']:.3f}" for k in ("precision", "recall", "fpr") if f"{prefix}.{k}" in metrics
        )
        lines.append(f"{prefix.removeprefix('guard_labels.')} vs expected_blocked: {counts}  {rates}")
    if "route_accuracy" in metrics:
        lines.append(
            f"route accuracy {metrics['route_accuracy']:.3f} on {metrics['route_labelled']:.0f} labelled questions"
        )
    return lines
