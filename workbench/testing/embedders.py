"""A deterministic `Embedder` for tests and examples: no model, no download."""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable

import numpy as np


class HashingEmbedder:
    """Hashed bag-of-words vectors: each token adds 1 to the dimension its CRC32 falls in, then
    rows are L2-normalised. Texts sharing words are close, which is all routing, re-ranking and
    relevance tests need.

    `batches` records every call; `fail_after` raises once more than that many texts were
    embedded, for fault injection. `fingerprint` feeds cache keys like a real embedder's.
    """

    def __init__(
        self,
        dim: int = 256,
        *,
        stopwords: Iterable[str] = (),
        min_token_len: int = 1,
        fingerprint: str = "hashing-v1",
        fail_after: int | None = None,
    ) -> None:
        self.dim = dim
        self.stopwords = frozenset(stopwords)
        self.min_token_len = min_token_len
        self.fingerprint = fingerprint
        self.fail_after = fail_after
        self.batches: list[list[str]] = []

    @property
    def calls(self) -> int:
        return len(self.batches)

    @property
    def texts(self) -> int:
        return sum(len(b) for b in self.batches)

    def _tokens(self, text: str) -> list[str]:
        words = re.findall(r"[a-z0-9]+", text.lower())
        return [w for w in words if len(w) >= self.min_token_len and w not in self.stopwords]

    def embed(self, texts: list[str]) -> np.ndarray:
        if self.fail_after is not None and self.texts + len(texts) > self.fail_after:
            raise RuntimeError("embedder failed on purpose")
        self.batches.append(list(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in self._tokens(text):
                out[row, zlib.crc32(token.encode()) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)
