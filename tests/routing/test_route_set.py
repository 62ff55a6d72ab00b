"""The labelled route set in datasets/routes/: loads, covers every intent on both sides of a
group-aware split, and a bad row is a one-line error naming file:line."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from workbench.core.errors import DatasetError
from workbench.routing import load_route_set, route_accuracy

ROUTES = Path(__file__).resolve().parents[2] / "datasets" / "routes"
INTENTS = {"factual", "structured", "arithmetic", "chitchat", "out_of_scope"}


def test_route_set_loads_with_every_intent_on_both_sides() -> None:
    train, test = load_route_set(ROUTES / "train.jsonl"), load_route_set(ROUTES / "test.jsonl")
    assert len(train) + len(test) >= 300
    for split in (train, test):
        counts = Counter(r.intent for r in split)
        assert set(counts) == INTENTS and min(counts.values()) >= 20
    # Group-aware: a template or a source paragraph sits on one side only, and no text repeats.
    assert not {r.group for r in train} & {r.group for r in test}
    assert not {r.text for r in train} & {r.text for r in test}


def test_bad_route_rows_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "routes.jsonl"
    path.write_text('{"id": "a", "text": "hi", "intent": "chitchat"}\n{"id": "b", "text": "hello"}\n')
    with pytest.raises(DatasetError, match=r"routes\.jsonl:2: missing key 'intent'"):
        load_route_set(path)


def test_route_accuracy_counts() -> None:
    overall, per_intent, confusion = route_accuracy(["a", "a", "b"], ["a", "b", "b"])
    assert overall == pytest.approx(2 / 3)
    assert per_intent == {"a": 0.5, "b": 1.0}
    assert confusion == {"a": {"a": 1, "b": 1}, "b": {"b": 1}}
