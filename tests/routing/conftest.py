import hashlib
import re

import numpy as np
import pytest

_STOP = {"the", "a", "an", "as", "for", "this", "with", "me", "of", "to", "is", "was", "did", "give", "what"}


class HashingEmbedder:
    """Deterministic bag-of-words embedder: each content word hashes to one dimension."""

    dim = 256

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z]+", text.lower()):
                if word not in _STOP:
                    out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder()
