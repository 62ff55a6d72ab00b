"""Datasets: a folder with `corpus.jsonl` and `questions.jsonl`, validated row by row.

Gold evidence is kept as character spans into corpus documents, so retrieval hits can be
computed for any chunking.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from workbench.core.config import describe_validation_error
from workbench.core.errors import DatasetError

DATASETS_DIR = "datasets"
R = TypeVar("R", bound=BaseModel)


class _Row(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Document(_Row):
    id: str = Field(min_length=1)
    text: str = Field(min_length=1)
    source: str | None = None
    title: str | None = None


class EvidenceSpan(_Row):
    doc_id: str
    start: int = Field(ge=0)
    end: int = Field(gt=0)


class Question(_Row):
    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    answer: str | None = None
    answerable: bool = True
    evidence: list[EvidenceSpan] = []
    gold_doc_ids: list[str] = []
    parametric_answer: str | None = None
    # Optional labels: with them, a run reports each guard's confusion counts and route accuracy.
    expected_blocked: StrictBool | None = Field(None, description="should the pipeline refuse this question?")
    expected_route: str | None = Field(None, min_length=1, description="the route this question should take")


@dataclass(frozen=True)
class Dataset:
    name: str
    path: Path
    documents: list[Document]
    questions: list[Question]
    content_hash: str

    def limit(self, n: int | None) -> Dataset:
        if n is None:
            return self
        return Dataset(self.name, self.path, self.documents, self.questions[:n], self.content_hash)


def read_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file; a missing or unreadable file is a `DatasetError`."""
    try:
        return path.read_text(encoding="utf-8").split("\n")
    except FileNotFoundError as exc:
        raise DatasetError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read it ({exc})") from exc


def json_objects(
    lines: Iterable[str], source: Path | str, expected: str = "a JSON object"
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(`source:line`, object) for each non-blank line; a line that is not valid JSON, or not
    an object, is a `DatasetError` naming the file and line (`expected` says what it should be)."""
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{source}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{where}: not valid JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise DatasetError(f"{where}: expected {expected}")
        yield where, row


def read_jsonl(path: Path, row: type[R], unique: str | None = "id") -> list[R]:
    """Parse and validate every line; the error names the file and line of a bad row.

    `unique` names a field no two rows may share: a repeated question id would otherwise
    multiply that question's rows and inflate every n.
    """
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    rows: list[R] = []
    first_line: dict[object, int] = {}
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                parsed = row.model_validate(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
            except ValidationError as exc:
                raise DatasetError(describe_validation_error(exc, f"{path}:{lineno}")) from exc
            if unique is not None:
                value = getattr(parsed, unique)
                if value in first_line:
                    raise DatasetError(
                        f"{path}:{lineno}: duplicate {unique} {value!r} (first on line {first_line[value]})"
                    )
                first_line[value] = lineno
            rows.append(parsed)
    if not rows:
        raise DatasetError(f"{path}: no rows")
    return rows


def resolve_dataset_path(name_or_path: str | Path, base: Path = Path(".")) -> Path:
    """A dataset folder: `name_or_path` as a path relative to `base`, else a name under
    `base/datasets/`. `base` is the session's root, the one base of every relative path."""
    candidate = base / Path(name_or_path).expanduser()
    if candidate.is_dir():
        return candidate
    root = base / DATASETS_DIR
    named = root / str(name_or_path)
    if named.is_dir():
        return named
    known = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    raise DatasetError(f"dataset {str(name_or_path)!r} not found; not a folder and not one of: {', '.join(known)}")


def _check_evidence(path: Path, questions: list[Question], docs: dict[str, Document]) -> None:
    for q in questions:
        for span in q.evidence:
            doc = docs.get(span.doc_id)
            if doc is None:
                raise DatasetError(f"{path} question {q.id}: evidence cites unknown doc_id {span.doc_id!r}")
            if not span.start < span.end <= len(doc.text):
                raise DatasetError(
                    f"{path} question {q.id}: evidence span {span.start}:{span.end} is outside doc {doc.id}"
                )


def file_hash(*paths: Path) -> str:
    digest = hashlib.sha256()
    for p in paths:
        digest.update(p.read_bytes())
    return digest.hexdigest()[:16]


def load_dataset(name_or_path: str | Path, base: Path = Path(".")) -> Dataset:
    path = resolve_dataset_path(name_or_path, base)
    corpus_file, questions_file = path / "corpus.jsonl", path / "questions.jsonl"
    documents = read_jsonl(corpus_file, Document)
    questions = read_jsonl(questions_file, Question)
    by_id = {d.id: d for d in documents}
    _check_evidence(questions_file, questions, by_id)
    return Dataset(path.name, path, documents, questions, file_hash(corpus_file, questions_file))


def load_corpus(path: str | Path) -> list[Document]:
    """A JSONL corpus on its own (ingestion of a file rather than a dataset folder)."""
    return read_jsonl(Path(path), Document)
