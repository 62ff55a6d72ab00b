"""A labelled route set: prompts with the intent (route) they should take, as in `datasets/routes/`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from workbench.core.dataset import read_jsonl
from workbench.core.state import Frozen


class RouteExample(Frozen):
    """One labelled prompt: `intent` is the route it should take, `group` the unit of the split."""

    id: str
    text: str
    intent: str
    source: str = ""
    group: str = ""


def load_route_set(path: str | Path) -> list[RouteExample]:
    """The rows of a route-set JSONL file; a bad row is a `DatasetError` naming file:line."""
    return read_jsonl(Path(path), RouteExample)


def route_accuracy(
    gold: Sequence[str], predicted: Sequence[str]
) -> tuple[float, dict[str, float], dict[str, dict[str, int]]]:
    """(overall accuracy, accuracy per gold intent, confusion counts gold -> predicted -> n)."""
    confusion: dict[str, dict[str, int]] = {}
    for g, p in zip(gold, predicted, strict=True):
        confusion.setdefault(g, {}).setdefault(p, 0)
        confusion[g][p] += 1
    per_intent = {g: row.get(g, 0) / sum(row.values()) for g, row in sorted(confusion.items())}
    overall = sum(g == p for g, p in zip(gold, predicted, strict=True)) / max(len(gold), 1)
    return overall, per_intent, confusion
