"""Planning a sweep: question splits and the order work runs in."""

from __future__ import annotations

from pathlib import Path

from workbench.core.dataset import Question
from workbench.sweeps.plan import split_questions, work_items
from workbench.sweeps.sweep import Sweep


def _questions(n: int) -> list[Question]:
    return [Question(id=f"q{i}", question=f"question {i}?", answer="a") for i in range(n)]


def test_split_is_seeded_disjoint_and_prefixes_are_samples() -> None:
    search, confirm = split_questions(_questions(20), 0.25, seed=1)
    assert len(confirm) == 5 and len(search) == 15
    assert not {q.id for q in search} & {q.id for q in confirm}
    again, _ = split_questions(_questions(20), 0.25, seed=1)
    assert [q.id for q in again] == [q.id for q in search]
    other, _ = split_questions(_questions(20), 0.25, seed=2)
    assert [q.id for q in other] != [q.id for q in search]
    # A prefix of the search split is not the dataset's first questions: rungs sample at random.
    assert [q.id for q in search[:5]] != [f"q{i}" for i in range(5)]


def test_items_run_question_by_question(sweep_spec: Path, small_dataset: Path) -> None:
    sweep = Sweep(sweep_spec, small_dataset, root=sweep_spec.parent, limit=3)
    try:
        items = work_items(sweep.configs, sweep.search_q, 1, "search", set())
        assert [i.question.id for i in items[:4]] == [sweep.search_q[0].id] * 4
        assert [i.variant for i in items[:4]] == sorted(sweep.configs)
        done = {items[0].key}
        assert len(work_items(sweep.configs, sweep.search_q, 1, "search", done)) == len(items) - 1
    finally:
        sweep.journal.close()
