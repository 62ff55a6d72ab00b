"""`groundedness` (output only): is the answer supported by the retrieved chunks?

Each answer sentence gets a support in [0, 1]: the share of its content tokens found in the
chunks, averaged with its best cosine similarity to a chunk when an `Embedder` is injected.
The answer's score is the token-weighted mean over sentences; below `threshold` it triggers.
Abstentions ("I don't know") are never flagged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.core.schema import GroundednessCheck
from workbench.core.state import RequestState
from workbench.guardrails._text import content_tokens, is_abstention, sentences
from workbench.guardrails.base import CheckResult, GuardCheck
from workbench.guardrails.json_schema import extract_json

ABSTAIN_TEXT = "I don't know."


def _answer_text(answer: str, state: RequestState, routes: dict[str, Any]) -> tuple[str, bool]:
    """The prose to check and whether the answer abstains; JSON answers contribute their strings."""
    route = routes.get(state.route or "")
    if route is None or route.output != "json":
        return answer, state.abstained or is_abstention(answer)
    try:
        value = extract_json(answer)
    except ValueError:
        return answer, state.abstained or is_abstention(answer)
    if isinstance(value, dict):
        if value.get("found") is False:
            return "", True
        strings = [v for v in value.values() if isinstance(v, str)]
        text = ". ".join(strings)
        return text, state.abstained or is_abstention(text)
    return answer, state.abstained


class GroundednessGuard(GuardCheck):
    """Flags answers whose sentences are not supported by the retrieved chunks.

    Masking keeps only the supported sentences (or "I don't know." when none is).
    """

    name = "groundedness"
    sides = frozenset({"output"})
    config: GroundednessCheck

    def sentence_support(self, parts: list[str], chunks: list[str]) -> list[float]:
        """Support of each sentence in `parts` by `chunks`, in [0, 1]."""
        chunk_tokens: set[str] = set().union(*(content_tokens(c) for c in chunks)) if chunks else set()
        lexical = []
        for part in parts:
            tokens = content_tokens(part)
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
        parts = sentences(prose)
        if not parts:
            return CheckResult(False, "answer is empty; not checked")
        chunks = [c.text for c in state.chunks]
        if not chunks:
            return CheckResult(True, "no retrieved chunks support the answer", masked_text=ABSTAIN_TEXT, score=0.0)
        supports = self.sentence_support(parts, chunks)
        weights = [max(len(content_tokens(p)), 1) for p in parts]
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
