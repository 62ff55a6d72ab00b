"""`answer_contains_gold`: the gold answer as whole normalised words of the answer."""

from __future__ import annotations

import pandas as pd
import pytest

from workbench.core.dataset import Question
from workbench.core.state import RequestState
from workbench.evaluation import summarize
from workbench.runner import question_row


def _row(gold: str | None, answer: str) -> dict[str, object]:
    question = Question(id="q", question="When?", answer=gold)
    return question_row(question, RequestState(query="When?", answer=answer), 0.1, None)


@pytest.mark.parametrize(
    ("gold", "answer", "contains"),
    [
        ("32", "It happened in 1932.", False),  # a substring test said yes
        ("1932", "It happened in 1932.", True),
        ("the Normans", "Rollo led THE NORMANS!", True),
        ("Rollo", "Rollo's army won.", True),
        ("Normandy", "Normandyland", False),
        (None, "anything", False),
    ],
)
def test_contains_gold_needs_whole_words(gold: str | None, answer: str, contains: bool) -> None:
    assert _row(gold, answer)["contains_gold"] is contains


def test_run_metric_counts_whole_word_matches_only() -> None:
    frame = pd.DataFrame([_row("32", "In 1932."), _row("1932", "In 1932."), _row("911", "In 911.")])
    assert summarize(frame)["answer_contains_gold"] == pytest.approx(2 / 3)
