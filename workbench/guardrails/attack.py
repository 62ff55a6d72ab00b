"""`attack`: prompt injection, jailbreaks and harmful requests, scored by a logistic head on the
pipeline's embedder combined with the `injection` heuristics.

A new check rather than an `injection` option: it needs an embedder and a weights file, cannot
mask (a classifier has no span to redact), and its score means something else (a fitted
probability rather than a noisy-OR of hand weights), so thresholds and logs stay unambiguous.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import ClassVar

import numpy as np

from workbench.core.errors import ConfigError
from workbench.core.schema import AttackCheck
from workbench.core.state import Action, RequestState
from workbench.guardrails._attack_head import Head, clip, load_head, shipped_path
from workbench.guardrails.base import CheckContext, CheckResult, GuardCheck
from workbench.guardrails.injection import score_injection


class AttackGuard(GuardCheck):
    """Triggers at `score >= threshold`; the head and its default threshold load on first use."""

    name = "attack"
    sides = frozenset({"input"})
    actions: ClassVar[frozenset[Action]] = frozenset({"block", "flag"})
    config: AttackCheck

    def __init__(self, config: AttackCheck, context: CheckContext | None = None) -> None:
        super().__init__(config, context)
        self._head: Head | None = None
        self._lock = threading.Lock()

    def validate_for(self, side: str) -> None:
        super().validate_for(side)
        if self.context.embedder is None:
            raise ConfigError("guardrail check 'attack' needs an embedder; build its stage with one")

    @property
    def head(self) -> Head:
        if self._head is None:
            with self._lock:
                if self._head is None:
                    head = load_head(self.config.weights, heuristics=self.config.heuristics)
                    embedder = self.context.embedder
                    if embedder is not None and embedder.dim != head.dim:
                        raise ConfigError(
                            f"the attack head was trained on {head.embedder} ({head.dim} dimensions); "
                            f"the pipeline's embedder has {embedder.dim}"
                        )
                    self._head = head
        return self._head

    def fingerprint(self) -> str:
        """The weights file's digest: a retrained head must not reuse cached verdicts."""
        path = Path(self.config.weights) if self.config.weights is not None else shipped_path()
        try:
            return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        except OSError as exc:
            raise ConfigError(f"attack head not found: {path}") from exc

    @property
    def threshold(self) -> float:
        return self.config.threshold if self.config.threshold is not None else self.head.threshold

    def warm_up(self) -> None:
        _ = self.head
        warm = getattr(self.context.embedder, "warm_up", None)
        if warm is not None:
            warm()

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
