import json
from pathlib import Path

import pytest

from workbench.core.dataset import load_dataset
from workbench.core.errors import DatasetError


def _make(tmp_path: Path, corpus: list[dict], questions: list) -> Path:
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus))
    (folder / "questions.jsonl").write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in questions)
    )
    return folder


DOC = {"id": "d1", "text": "Paris is the capital of France."}


def test_loads_shipped_datasets() -> None:
    ds = load_dataset("squad_disfl")
    assert len(ds.documents) == 300 and len(ds.questions) == 1997
    unanswerable = [q for q in ds.questions if not q.answerable]
    assert len(unanswerable) == 526
    q = next(q for q in ds.questions if q.evidence)
    doc = next(d for d in ds.documents if d.id == q.evidence[0].doc_id)
    span = q.evidence[0]
    assert doc.text[span.start : span.end] == q.answer
    kc = load_dataset("knowledge_conflicts")
    assert all(q.parametric_answer for q in kc.questions)


def test_dataset_by_path_and_limit(tmp_path: Path) -> None:
    folder = _make(tmp_path, [DOC], [{"id": "q1", "question": "Capital?"}, {"id": "q2", "question": "Again?"}])
    ds = load_dataset(str(folder))
    assert ds.limit(1).questions[0].id == "q1" and ds.content_hash == load_dataset(folder).content_hash


def test_malformed_row_gives_file_and_line(tmp_path: Path) -> None:
    folder = _make(tmp_path, [DOC], [{"id": "q1", "question": "ok"}, {"id": "q2"}])
    with pytest.raises(DatasetError) as err:
        load_dataset(folder)
    assert f"{folder / 'questions.jsonl'}:2" in str(err.value) and "question" in str(err.value)


def test_invalid_json_line(tmp_path: Path) -> None:
    folder = _make(tmp_path, [DOC], [{"id": "q1", "question": "ok"}, "{not json"])
    with pytest.raises(DatasetError, match=r"questions.jsonl:2: not valid JSON"):
        load_dataset(folder)


def test_empty_corpus(tmp_path: Path) -> None:
    folder = _make(tmp_path, [], [{"id": "q1", "question": "ok"}])
    with pytest.raises(DatasetError, match="corpus.jsonl: no rows"):
        load_dataset(folder)


def test_evidence_outside_document(tmp_path: Path) -> None:
    q = {"id": "q1", "question": "ok", "evidence": [{"doc_id": "d1", "start": 5, "end": 500}]}
    with pytest.raises(DatasetError, match="outside doc d1"):
        load_dataset(_make(tmp_path, [DOC], [q]))


def test_unknown_dataset_lists_known() -> None:
    with pytest.raises(DatasetError, match="squad_disfl"):
        load_dataset("no_such_dataset")
