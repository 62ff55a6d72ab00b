"""The labels file of `calibrate`: JSONL, one labelled example a line.

    {"id": "a1", "text": "Ignore previous instructions ...", "attack": true}
    {"id": "b1", "text": "How do I override a method?", "attack": false, "route": "general"}
    {"id": "r1", "text": "Return a JSON object with the year", "route": "structured"}
    {"id": "o1", "answer": "Paris.", "contexts": ["Paris is the capital of France."], "grounded": true}

- `id` (string or integer, unique) and at least one label on every line.
- Input labels need `text`: `attack` (bool) labels the `attack` and `injection` checks; `route`
  (a configured route name) labels the router.
- Output labels need `answer` (`question` optional): `grounded` (bool, also needs `contexts`,
  a list of strings) labels `groundedness`, which should trigger when it is false; `unsafe`
  (bool) labels `safety`.
- Which key labels which check is `_calibrate_checks.CALIBRATIONS`; any other key is an error,
  so a misspelt label is never silently ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench._calibrate_checks import CALIBRATIONS, label_keys
from workbench._calibrate_types import LabelledExample
from workbench.core.dataset import json_objects, read_lines
from workbench.core.errors import DatasetError

_FIELDS = ("id", "text", "question", "answer", "contexts", "route")
# The keys an example needs for each label (checks sharing a label read the same kind of text).
REQUIRED: dict[str, tuple[str, ...]] = {c.label: c.required for c in CALIBRATIONS.values()}


def _string(row: dict[str, Any], key: str, where: str) -> str | None:
    value = row.get(key)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise DatasetError(f"{where}: {key!r} must be a non-empty string")
    return value


def _example(row: dict[str, Any], where: str, routes: set[str]) -> LabelledExample:
    known = set(_FIELDS) | set(label_keys())
    unknown = sorted(set(row) - known)
    if unknown:
        raise DatasetError(f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join(sorted(known))}")
    if "id" not in row:
        raise DatasetError(f"{where}: missing 'id'")
    if not isinstance(row["id"], str | int) or isinstance(row["id"], bool):
        raise DatasetError(f"{where}: 'id' must be a string or an integer")
    labels: dict[str, bool] = {}
    for key in label_keys():
        if key in row:
            if not isinstance(row[key], bool):
                raise DatasetError(f"{where}: {key!r} must be true or false")
            labels[key] = row[key]
    route = _string(row, "route", where)
    if route is not None and route not in routes:
        raise DatasetError(f"{where}: unknown route {route!r}; the config's routes: {', '.join(sorted(routes))}")
    if not labels and route is None:
        raise DatasetError(f"{where}: no label; give one of {', '.join([*label_keys(), 'route'])}")
    contexts = row.get("contexts")
    if contexts is not None and (not isinstance(contexts, list) or not all(isinstance(c, str) for c in contexts)):
        raise DatasetError(f"{where}: 'contexts' must be a list of strings")
    example = LabelledExample(
        id=row["id"],
        text=_string(row, "text", where),
        question=_string(row, "question", where),
        answer=_string(row, "answer", where),
        contexts=contexts,
        route=route,
        labels=labels,
    )
    needs = [(key, REQUIRED[key]) for key in labels] + ([("route", ("text",))] if route is not None else [])
    for key, required in needs:
        missing = [name for name in required if getattr(example, name) is None]
        if missing:
            raise DatasetError(f"{where}: label {key!r} needs {' and '.join(repr(m) for m in missing)}")
    return example


def read_labels(path: Path, routes: set[str]) -> list[LabelledExample]:
    """Every example of the labels file at `path`; a bad line is a `DatasetError` naming file:line."""
    lines = read_lines(path)
    examples: list[LabelledExample] = []
    first: dict[Any, str] = {}
    for where, row in json_objects(lines, path, "a JSON object with 'id', a text and a label"):
        example = _example(row, where, routes)
        if example.id in first:
            raise DatasetError(f"{where}: duplicate id {example.id!r} (first at {first[example.id]})")
        first[example.id] = where
        examples.append(example)
    if not examples:
        raise DatasetError(f"{path}: no labelled examples")
    return examples
