"""Fixtures for the retrieval tests: a counting hashed bag-of-words embedder and small corpora."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from workbench.core.dataset import Document, Question, load_dataset
from workbench.core.schema import IngestionConfig
from workbench.testing.embedders import HashingEmbedder

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder(256, min_token_len=3, fingerprint="fake-v1")


@pytest.fixture
def chunking() -> IngestionConfig:
    return IngestionConfig(chunk_size=64, chunk_overlap=8)


@pytest.fixture(scope="session")
def squad() -> tuple[list[Document], list[Question]]:
    """The first 30 squad_disfl paragraphs and their answerable questions."""
    ds = load_dataset(REPO / "datasets" / "squad_disfl")
    docs = ds.documents[:30]
    ids = {d.id for d in docs}
    questions = [q for q in ds.questions if q.answerable and q.evidence and q.evidence[0].doc_id in ids]
    return docs, questions


@pytest.fixture
def make_embedder() -> Callable[..., HashingEmbedder]:
    """Embedders like the default one, with other settings (dimension, fingerprint, failures)."""
    return functools.partial(HashingEmbedder, dim=256, min_token_len=3)


def _write_corpus(path: Path, docs: list[Document]) -> Path:
    path.write_text("".join(json.dumps(d.model_dump(exclude_none=True)) + "\n" for d in docs))
    return path


@pytest.fixture
def write_corpus():  # type: ignore[no-untyped-def]
    return _write_corpus
