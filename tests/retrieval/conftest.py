"""Fixtures for the retrieval tests: a counting hashed bag-of-words embedder and small corpora."""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path

import numpy as np
import pytest

from workbench.core.dataset import Document, Question, load_dataset
from workbench.core.schema import IngestionConfig

REPO = Path(__file__).resolve().parents[2]


class CountingEmbedder:
    """Deterministic hashed bag-of-words vectors; counts calls and texts embedded."""

    def __init__(self, dim: int = 256, fingerprint: str = "fake-v1", fail_after: int | None = None) -> None:
        self._dim = dim
        self.fingerprint = fingerprint
        self.calls = 0
        self.texts = 0
        self.fail_after = fail_after

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: list[str]) -> np.ndarray:
        if self.fail_after is not None and self.texts + len(texts) > self.fail_after:
            raise RuntimeError("embedder failed on purpose")
        self.calls += 1
        self.texts += len(texts)
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for tok in re.findall(r"\w+", text.lower()):
                if len(tok) > 2:
                    out[i, zlib.crc32(tok.encode()) % self._dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)


@pytest.fixture
def embedder() -> CountingEmbedder:
    return CountingEmbedder()


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
def make_embedder() -> type[CountingEmbedder]:
    return CountingEmbedder


def _write_corpus(path: Path, docs: list[Document]) -> Path:
    path.write_text("".join(json.dumps(d.model_dump(exclude_none=True)) + "\n" for d in docs))
    return path


@pytest.fixture
def write_corpus():  # type: ignore[no-untyped-def]
    return _write_corpus
