"""Lexical (BM25) retrieval behind one small interface, with two backends.

Decision, by measurement (benchmarks/bench_retrieval.py, figures in benchmarks/RESULTS.md):
the default is **bm25s**. On the 13k-chunk wiki_summaries + squad_disfl store it answers a
query in 0.6 ms (p50) against 12 ms for DuckDB's `match_bm25`, which scores every row through a
SQL macro; with the same SMART stop words as DuckDB fts its recall@5 on squad_disfl is 0.919 vs
0.914. Building it from the chunks takes under a second per 10k chunks, so it is rebuilt on open
rather than persisted, and the store stays a single DuckDB file. The DuckDB fts backend stays
available as `duckdb_fts` (its index is persisted in the store and rebuilt only when the corpus
changes), for corpora too large to tokenise on every open.

Both return `(row, score)` pairs where `row` indexes the `IndexData` they were built from.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from workbench.core.errors import MissingDependency
from workbench.core.registry import Registry
from workbench.retrieval._imports import require
from workbench.retrieval._stopwords import SMART_STOPWORDS
from workbench.retrieval.store import IndexData, Store


class LexicalIndex(Protocol):
    name: str

    def search(self, query: str, k: int) -> list[tuple[int, float]]: ...


LEXICAL_BACKENDS = Registry(
    "lexical backend",
    {
        "bm25s": "workbench.retrieval.lexical:Bm25sIndex",
        "duckdb_fts": "workbench.retrieval.lexical:DuckDbFtsIndex",
    },
)
DEFAULT_LEXICAL = "bm25s"


def build_lexical(name: str, data: IndexData, store: Store) -> LexicalIndex:
    index: LexicalIndex = LEXICAL_BACKENDS.resolve(name).build(data, store)
    return index


def top_k(scores: np.ndarray, k: int, positive: bool = True) -> list[tuple[int, float]]:
    """Indices of the k highest scores, best first; with `positive`, only scores above 0."""
    k = min(k, scores.shape[0])
    if k <= 0:
        return []
    idx = np.argpartition(-scores, k - 1)[:k]
    idx = idx[np.argsort(-scores[idx], kind="stable")]
    return [(int(i), float(scores[i])) for i in idx if not positive or scores[i] > 0]


STOPWORDS = sorted(SMART_STOPWORDS)


class Bm25sIndex:
    """BM25 (Lucene variant, k1=1.2, b=0.75) from `bm25s`, SMART stop words, Snowball stemming."""

    name = "bm25s"

    def __init__(self, retriever: Any, stemmer: Any, n: int) -> None:
        self._retriever = retriever
        self._stemmer = stemmer
        self._n = n
        self._lock = threading.Lock()  # PyStemmer objects are not thread-safe

    @classmethod
    def build(cls, data: IndexData, store: Store | None = None) -> Bm25sIndex:
        bm25s = require("bm25s", "bm25s")
        # bm25s sets its own logger to DEBUG on import; let the application's config decide.
        logging.getLogger("bm25s").setLevel(logging.NOTSET)
        stemmer = require("Stemmer", "PyStemmer").Stemmer("english")
        tokens = bm25s.tokenize(data.texts, stopwords=STOPWORDS, stemmer=stemmer, show_progress=False)
        retriever = bm25s.BM25(k1=1.2, b=0.75)
        retriever.index(tokens, show_progress=False)
        return cls(retriever, stemmer, len(data))

    def _tokens(self, query: str) -> list[str]:
        bm25s = require("bm25s", "bm25s")
        with self._lock:
            tokenized = bm25s.tokenize(
                [query], stopwords=STOPWORDS, stemmer=self._stemmer, return_ids=False, show_progress=False
            )
        vocab = self._retriever.vocab_dict
        return [t for t in tokenized[0] if t in vocab]

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        tokens = self._tokens(query)
        if not tokens or self._n == 0:
            return []
        return top_k(np.asarray(self._retriever.get_scores(tokens), dtype=np.float32), k)


def load_packaged_extension(con: Any, name: str) -> None:
    """LOAD a DuckDB extension shipped in the `duckdb-extension-<name>` pip package.

    Nothing is downloaded: the binary inside the installed package is loaded by path.
    """
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is not None and spec.submodule_search_locations:
        root = Path(next(iter(spec.submodule_search_locations)))
        found = sorted(root.rglob(f"{name}.duckdb_extension*"))
        if found:
            con.execute(f"LOAD '{found[0].as_posix()}'")
            return
    raise MissingDependency(f"duckdb-extension-{name}", "retrieval")


class DuckDbFtsIndex:
    """BM25 from DuckDB's fts extension (`PRAGMA create_fts_index`, `match_bm25`).

    The fts index lives in the store file; it is rebuilt when the corpus fingerprint it was
    built for differs from the store's.
    """

    name = "duckdb_fts"

    _QUERY = (
        "SELECT chunk_id, score FROM (SELECT chunk_id, fts_main_chunks.match_bm25(chunk_id, ?) AS score "
        "FROM chunks) WHERE score IS NOT NULL ORDER BY score DESC LIMIT ?"
    )

    def __init__(self, con: Any, rows: dict[str, int]) -> None:
        self._con = con
        self._rows = rows

    @classmethod
    def build(cls, data: IndexData, store: Store) -> DuckDbFtsIndex:
        reader = store.connect(read_only=True)
        if Store.meta(reader).get("fts_fingerprint") != data.corpus_fingerprint:
            reader.close()
            cls._create(store, data.corpus_fingerprint)
            reader = store.connect(read_only=True)
        # Queries go through a read-only connection, like every other reader of the store.
        load_packaged_extension(reader, "fts")
        return cls(reader, {cid: i for i, cid in enumerate(data.chunk_ids)})

    @staticmethod
    def _create(store: Store, corpus_fp: str) -> None:
        con = store.connect()
        try:
            load_packaged_extension(con, "fts")
            with Store.transaction(con):
                con.execute(
                    "PRAGMA create_fts_index('chunks', 'chunk_id', 'text', stemmer='english', "
                    "stopwords='english', overwrite=1)"
                )
                Store.set_meta(con, {"fts_fingerprint": corpus_fp})
        finally:
            con.close()

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        cursor = self._con.cursor()  # one cursor per call: safe across threads
        try:
            rows = cursor.execute(self._QUERY, [query, k]).fetchall()
        finally:
            cursor.close()
        return [(self._rows[cid], float(score)) for cid, score in rows if cid in self._rows]

    def close(self) -> None:
        self._con.close()
