"""`EntityGraph`: the store's entities and relations in memory, and the graph retriever.

A query is answered in four steps:

1. **Link**: word n-grams of the query (longest first) that equal an entity key are its seeds; a
   single word counts only when capitalised in the query, so "city" does not link to "City".
   Seeds are weighted by rarity, `log(1 + chunks / chunks mentioning it)`, and the rarest
   `max_seeds` are kept.
2. **Walk**: `hops` times, each entity passes `decay` times its activation to its `fan_out`
   rarest neighbours over the relations table (both directions; `mentions` links a document's
   subject to everything it names, so it also serves as document-level co-occurrence).
3. **Score chunks**: a chunk gets the activation of every entity it mentions, doubled for the
   entity its document is about (its title); entities named in more than `HUB_ROWS` chunks
   reach only their own article, so "English" does not pull in a thousand chunks.
4. **Rank**: that graph score times the chunk's cosine similarity to the query, so among
   everything reachable, what matches the question's wording comes first.

The ranking is then fused with BM25 and dense as one more retriever (`RetrievalIndex`).
"""

from __future__ import annotations

import logging
import math
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from workbench.core.schema import GraphRetrievalConfig
from workbench.retrieval._entities import normalise
from workbench.retrieval.store import Store

log = logging.getLogger(__name__)

HUB_ROWS = 200  # an entity named in more chunks than this contributes only its own article
MAX_NGRAM = 6
SUBJECT_BOOST = 2.0


class EntityGraph:
    """Entity -> chunk rows, entity -> neighbours, entity -> rows of its own article."""

    def __init__(
        self,
        mentions: dict[str, list[int]],
        subjects: dict[str, list[int]],
        neighbours: dict[str, list[str]],
        n_rows: int,
    ) -> None:
        self.mentions = mentions
        self.subjects = subjects
        self.n_rows = max(n_rows, 1)
        self.df = {key: len(rows) for key, rows in mentions.items()}
        for key, rows in subjects.items():
            self.df[key] = max(self.df.get(key, 0), len(rows))
        # Rarest first: a rare neighbour says more about this entity than a common one.
        self.neighbours = {k: sorted(v, key=lambda n: (self.df.get(n, 0), n)) for k, v in neighbours.items()}

    @classmethod
    def load(cls, path: str | Path, row_of: dict[str, int]) -> EntityGraph | None:
        """The graph of the store at `path` (chunk ids mapped to index rows by `row_of`), or
        None if it was ingested without `ingestion.graph`."""
        store = Store(path)
        con = store.connect(read_only=True)
        try:
            if "graph" not in store.meta(con):
                return None
            mention_rows = con.execute("SELECT DISTINCT key, chunk_id FROM entities").fetchall()
            edge_rows = con.execute("SELECT DISTINCT head_key, tail_key FROM relations").fetchall()
            title_rows = con.execute(
                "SELECT d.title, c.chunk_id FROM chunks c JOIN documents d USING (doc_id) WHERE d.title IS NOT NULL"
            ).fetchall()
        finally:
            con.close()
        mentions: dict[str, list[int]] = defaultdict(list)
        for key, cid in mention_rows:
            if cid in row_of:
                mentions[key].append(row_of[cid])
        subjects: dict[str, list[int]] = defaultdict(list)
        for title, cid in title_rows:
            if cid in row_of and (key := normalise(title)):
                subjects[key].append(row_of[cid])
        neighbours: dict[str, set[str]] = defaultdict(set)
        for head, tail in edge_rows:
            neighbours[head].add(tail)
            neighbours[tail].add(head)
        graph = cls(dict(mentions), dict(subjects), {k: list(v) for k, v in neighbours.items()}, len(row_of))
        log.info("graph of %s: %d entities, %d relations", path, len(graph.df), len(edge_rows))
        return graph

    def idf(self, key: str) -> float:
        return math.log(1.0 + self.n_rows / max(self.df.get(key, 0), 1))

    # -- the query ------------------------------------------------------------------------

    def link(self, query: str, max_seeds: int) -> dict[str, float]:
        """Entity keys named in `query`, longest match first, weighted by rarity."""
        words = [(m.group(), normalise(m.group())) for m in re.finditer(r"\w+", re.sub(r"['’]s\b", "", query))]
        found: dict[str, float] = {}
        i = 0
        while i < len(words):
            for n in range(min(MAX_NGRAM, len(words) - i), 0, -1):
                key = " ".join(w for _, w in words[i : i + n])
                if key in self.df and (n > 1 or words[i][0][:1].isupper()):
                    found[key] = self.idf(key)
                    i += n
                    break
            else:
                i += 1
        rarest = sorted(found.items(), key=lambda kv: -kv[1])[:max_seeds]
        return dict(rarest)

    def walk(self, seeds: dict[str, float], config: GraphRetrievalConfig) -> dict[str, float]:
        """Activation of every entity within `config.hops` of the seeds (the best path wins)."""
        active = dict(seeds)
        frontier = dict(seeds)
        for _ in range(config.hops):
            reached: dict[str, float] = {}
            for key, value in frontier.items():
                passed = value * config.decay
                for nb in self.neighbours.get(key, ())[: config.fan_out]:
                    if passed > active.get(nb, 0.0) and passed > reached.get(nb, 0.0):
                        reached[nb] = passed
            active.update(reached)
            frontier = reached
        return active

    def chunk_scores(self, active: dict[str, float]) -> dict[int, float]:
        scores: dict[int, float] = defaultdict(float)
        for key, value in active.items():
            rows = self.mentions.get(key, ())
            if len(rows) <= HUB_ROWS:
                for row in rows:
                    scores[row] += value
            for row in self.subjects.get(key, ()):
                scores[row] += SUBJECT_BOOST * value
        return scores

    def rank(
        self, query: str, query_vector: np.ndarray, vectors: np.ndarray, config: GraphRetrievalConfig, k: int
    ) -> list[tuple[int, float]]:
        """The `k` best chunk rows for `query`: graph score times cosine similarity."""
        seeds = self.link(query, config.max_seeds)
        if not seeds:
            return []
        scores = self.chunk_scores(self.walk(seeds, config))
        rows = np.fromiter(scores, dtype=np.int64, count=len(scores))
        graph = np.fromiter(scores.values(), dtype=np.float64, count=len(scores))
        # einsum, not `@`: see RetrievalIndex.dense (BLAS threads fight torch's on 2 cores).
        cosine = np.einsum("ij,j->i", vectors[rows], query_vector).astype(np.float64)
        final = graph * np.clip(cosine, 0.01, None)
        order = np.lexsort((rows, -final))[:k]
        return [(int(rows[i]), float(final[i])) for i in order]
