import hashlib
import re

import numpy as np
import pytest

from workbench.core.schema import RouteConfig
from workbench.core.state import Chunk


class HashingEmbedder:
    """Deterministic bag-of-words embedder for tests: each word hashes to one dimension."""

    dim = 512

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture
def routes() -> dict[str, RouteConfig]:
    return {
        "general": RouteConfig(utterances=["When did it happen?"]),
        "structured": RouteConfig(
            utterances=["Return JSON"],
            output="json",
            json_schema={
                "type": "object",
                "required": ["answer"],
                "properties": {"answer": {"type": "string"}, "found": {"type": "boolean"}},
            },
        ),
    }


@pytest.fixture
def chunks() -> tuple[Chunk, ...]:
    texts = [
        "The Normans were the people who in the 10th and 11th centuries gave their name to Normandy, "
        "a region in France.",
        "Rollo, a Viking leader, agreed to swear fealty to King Charles III of West Francia in 911.",
    ]
    return tuple(Chunk(chunk_id=f"c{i}", doc_id="normans", text=t, start=0, end=len(t)) for i, t in enumerate(texts))
