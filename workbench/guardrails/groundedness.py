"""`groundedness` (output only): is the answer supported by the retrieved chunks?

Each answer sentence gets a support in [0, 1]: the share of its content tokens found in the
chunks, averaged with its best cosine similarity to a chunk when an `Embedder` is injected.
The answer's score is the token-weighted mean over sentences; below `threshold` it triggers.
Abstentions (`core.text.is_abstention`, the pipeline's own definition) are never flagged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.core.schema import GroundednessCheck
from workbench.core.state import RequestState
from workbench.core.text import ABSTAIN_TEXT, content_words, is_abstention, split_sentences, structured_answer
from workbench.guardrails.base import CheckResult, GuardCheck
from workbench.guardrails.json_schema import extract_json

__all__ = ["ABSTAIN_TEXT", "GroundednessGuard"]


def _answer_text(answer: str, state: RequestState, routes: dict[str, Any]) -> tuple[str, bool]:
    """The prose to check and whether the answer abstains; JSON answers contribute their strings."""
    route = routes.get(state.route or "")
    if route is None or route.output != "json":
        return answer, state.abstained or is_abstention(answer)
    try:
        value = extract_json(answer)
    except ValueError:
        return answer, state.abstained or is_abstention(answer)
    prose, abstains = structured_answer(value)
    return prose, state.abstained or abstains


class GroundednessGuard(GuardCheck):
    """Flags answers whose sentences are not supported by the retrieved chunks.

    Masking keeps only the supported sentences (or "I don't know." when none is).
    """

    name = "groundedness"
    sides = frozenset({"output"})
    config: GroundednessCheck

    def sentence_support(self, parts: list[str], chunks: list[str]) -> list[float]:
        """Support of each sentence in `parts` by `chunks`, in [0, 1]."""
        chunk_tokens: set[str] = set().union(*(content_words(c) for c in chunks)) if chunks else set()
        lexical = []
        for part in parts:
            tokens = set(content_words(part))
            lexical.append(len(tokens & chunk_tokens) / len(tokens) if tokens else 1.0)
        embedder = self.context.embedder
        if embedder is None or not chunks:
            return lexical
        raw = np.asarray(embedder.embed(parts + chunks), dtype=np.float32)
        vectors = raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12)
        sims = (vectors[: len(parts)] @ vectors[len(parts) :].T).max(axis=1).clip(0.0, 1.0)
        return [(lex + float(sim)) / 2 for lex, sim in zip(lexical, sims, strict=True)]

    def inspect(self, text: str, state: RequestState) -> CheckResult:
        prose, abstained = _answer_text(text, state, self.context.routes)
        if abstained:
            return CheckResult(False, "answer abstains; not checked")
        parts = split_sentences(prose)
        chunks = [c.text for c in state.chunks]
        if not chunks:
            return CheckResult(True, "no retrieved chunks support the answer", masked_text=ABSTAIN_TEXT, score=0.0)
        supports = self.sentence_support(parts, chunks)
        weights = [max(len(set(content_words(p))), 1) for p in parts]
        score = float(np.average(supports, weights=weights))
        threshold = self.config.threshold
        if score >= threshold:
            return CheckResult(False, f"support {score:.2f} >= {threshold:.2f}", score=score)
        worst = parts[int(np.argmin(supports))]
        kept = [p for p, s in zip(parts, supports, strict=True) if s >= threshold]
        return CheckResult(
            True,
            f"support {score:.2f} < {threshold:.2f}; least supported: {worst[:80]!r}",
            masked_text=" ".join(kept) if kept else ABSTAIN_TEXT,
            score=score,
        )
