"""`attack`: prompt injection, jailbreaks and harmful requests, scored by a logistic head on the
pipeline's embedder combined with the `injection` heuristics.

A new check rather than an `injection` option: it needs an embedder and a weights file, cannot
mask (a classifier has no span to redact), and its score means something else (a fitted
probability rather than a noisy-OR of hand weights), so thresholds and logs stay unambiguous.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from workbench.core.schema import AttackCheck
from workbench.core.state import Action, RequestState
from workbench.guardrails._attack_head import Head, clip, load_head, shipped_path
from workbench.guardrails._head_check import EmbeddingHeadCheck
from workbench.guardrails.base import CheckResult
from workbench.guardrails.injection import score_injection


class AttackGuard(EmbeddingHeadCheck):
    """Triggers at `score >= threshold`; the head and its default threshold load on first use."""

    name = "attack"
    what = "attack head"
    sides = frozenset({"input"})
    actions: ClassVar[frozenset[Action]] = frozenset({"block", "flag"})
    config: AttackCheck

    def load(self) -> Head:
        return load_head(self.config.weights, heuristics=self.config.heuristics)

    def shipped(self) -> Path:
        return shipped_path()

    @property
    def head(self) -> Head:
        return self.loaded  # type: ignore[no-any-return]

    def score(self, text: str) -> tuple[float, list[str]]:
        """(P(attack), the heuristics' signals) for one text."""
        head = self.head
        assert self.context.embedder is not None
        vector = self.context.embedder.embed([clip(text, head.head_chars, head.tail_chars)])
        heuristic, labels, _ = score_injection(text) if head.uses_heuristics else (0.0, [], [])
        features = np.array([heuristic]) if head.uses_heuristics else None
        return float(head.score(vector, features)[0]), labels

    def inspect(self, text: str, state: RequestState) -> CheckResult:
        score, labels = self.score(text)
        threshold = self.threshold
        triggered = score >= threshold
        op = ">=" if triggered else "<"
        signals = f" (heuristic signals: {', '.join(labels)})" if labels else ""
        return CheckResult(triggered, f"attack score {score:.2f} {op} {threshold:.2f}{signals}", score=score)
