"""Embedding access for the metrics: one cache shared by every embedding metric of a scoring
run, and micro-batching of the texts that concurrent rows ask for at the same moment.

The injected `Embedder` is synchronous and CPU-bound; calls go to a worker thread so the event
loop keeps scheduling the other rows, and texts requested in one loop tick are encoded in one
batch (a batch of 64 costs far less than 64 single calls).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from workbench.core.claims import cosine
from workbench.core.protocols import Embedder

__all__ = ["VectorCache", "as_vectors", "cosine"]


class VectorCache:
    """Vectors by text for one `Embedder`, least recently used evicted past `max_items`."""

    def __init__(self, embedder: Embedder, max_items: int = 20_000) -> None:
        self.embedder = embedder
        self.max_items = max_items
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._pending: dict[str, asyncio.Future[np.ndarray]] = {}
        self._queue: list[str] = []
        self._flushes: set[asyncio.Task[None]] = set()  # held so they are not garbage collected
        self.encoded = 0  # texts sent to the embedder, for tests and benchmarks

    def _get(self, text: str) -> np.ndarray | None:
        vector = self._vectors.get(text)
        if vector is not None:
            self._vectors.move_to_end(text)
        return vector

    def _put(self, text: str, vector: np.ndarray) -> None:
        vector = np.asarray(vector, dtype=np.float32)
        vector.setflags(write=False)
        self._vectors[text] = vector
        if len(self._vectors) > self.max_items:
            self._vectors.popitem(last=False)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Synchronous lookup (for ragas' sync embedding calls); encodes the misses at once."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if missing:
            self.encoded += len(missing)
            for text, vector in zip(missing, self.embedder.embed(missing), strict=True):
                self._put(text, vector)
        found = {t: self._vectors[t] for t in dict.fromkeys(texts)}
        return np.stack([found[t] for t in texts])

    async def aembed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        loop = asyncio.get_running_loop()
        found: dict[str, np.ndarray | asyncio.Future[np.ndarray]] = {}
        for text in dict.fromkeys(texts):
            vector = self._get(text)
            if vector is not None:
                found[text] = vector
                continue
            future = self._pending.get(text)
            if future is None:
                future = loop.create_future()
                self._pending[text] = future
                if not self._queue:
                    task = loop.create_task(self._flush())
                    self._flushes.add(task)
                    task.add_done_callback(self._flushes.discard)
                self._queue.append(text)
            found[text] = future
        out = []
        for text in texts:
            item = found[text]
            out.append(await item if isinstance(item, asyncio.Future) else item)
        return np.stack(out)

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # one tick: let the other rows queue their texts
        batch, self._queue = self._queue, []
        try:
            vectors = await asyncio.to_thread(self.embedder.embed, batch)
        except Exception as exc:  # every row waiting on this batch sees the error
            for text in batch:
                self._pending.pop(text).set_exception(exc)
            return
        self.encoded += len(batch)
        for text, vector in zip(batch, vectors, strict=True):
            self._put(text, vector)
            self._pending.pop(text).set_result(self._vectors[text])


def as_vectors(embedder: Embedder | VectorCache) -> VectorCache:
    """The cache itself, or a new cache around a bare embedder."""
    return embedder if isinstance(embedder, VectorCache) else VectorCache(embedder)
