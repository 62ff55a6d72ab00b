"""`safety` (output only): toxic and harmful content in an answer, or in a tool's output (which
the output guards see as the answer).

A logistic head on the pipeline's embedder, by default with a toxicity model's P(offensive) as
one more feature (`_safety_head`: the head, its fitted threshold and the toxicity model ship in
one .npz trained by `benchmarks/train_safety.py` on `datasets/safety/`). The toxicity model is
a lexical signal (profanity, slurs, insults); the embedding carries harm that is said politely
(instructions for weapons, drugs, self-harm, harassment).

`mask` scores each sentence of a flagged answer with the same head and removes those at or
above the threshold. When none does on its own, or more than half do (the harm is spread over
the answer, and what is left would be pieces of it), the answer becomes `SAFE_REFUSAL`.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np

from workbench.core.errors import ConfigError
from workbench.core.schema import SafetyCheck
from workbench.core.state import RequestState
from workbench.core.text import split_sentences
from workbench.guardrails._attack_head import clip
from workbench.guardrails._safety_head import SafetyHead, load_safety_head, shipped_path
from workbench.guardrails.base import CheckContext, CheckResult, GuardCheck

__all__ = ["SAFE_REFUSAL", "SafetyGuard"]

SAFE_REFUSAL = "I can't help with that."


class SafetyGuard(GuardCheck):
    """Triggers at `score >= threshold`; the head and its default threshold load on first use."""

    name = "safety"
    sides = frozenset({"output"})
    config: SafetyCheck

    def __init__(self, config: SafetyCheck, context: CheckContext | None = None) -> None:
        super().__init__(config, context)
        self._model: SafetyHead | None = None
        self._lock = threading.Lock()

    def validate_for(self, side: str) -> None:
        super().validate_for(side)
        if self.context.embedder is None:
            raise ConfigError("guardrail check 'safety' needs an embedder; build its stage with one")

    @property
    def model(self) -> SafetyHead:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    model = load_safety_head(self.config.weights, toxicity=self.config.toxicity)
                    embedder = self.context.embedder
                    if embedder is not None and embedder.dim != model.head.dim:
                        raise ConfigError(
                            f"the safety head was trained on {model.head.embedder} ({model.head.dim} dimensions); "
                            f"the pipeline's embedder has {embedder.dim}"
                        )
                    self._model = model
        return self._model

    def fingerprint(self) -> str:
        """The weights file's digest: a retrained head must not reuse cached verdicts."""
        path = Path(self.config.weights) if self.config.weights is not None else shipped_path()
        try:
            return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        except OSError as exc:
            raise ConfigError(f"safety head not found: {path}") from exc

    @property
    def threshold(self) -> float:
        return self.config.threshold if self.config.threshold is not None else self.model.head.threshold

    def warm_up(self) -> None:
        _ = self.model
        warm = getattr(self.context.embedder, "warm_up", None)
        if warm is not None:
            warm()

    def scores(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(P(unsafe), toxicity) for each of `texts`, embedded in one batch."""
        model = self.model
        head = model.head
        assert self.context.embedder is not None
        vectors = self.context.embedder.embed([clip(t, head.head_chars, head.tail_chars) for t in texts])
        toxicity = model.profanity.score(texts)
        return head.score(np.asarray(vectors), toxicity if head.uses_heuristics else None), toxicity

    def inspect(self, text: str, state: RequestState) -> CheckResult:
        if not text.strip():
            return CheckResult(False, "empty answer", score=0.0)
        score_array, toxicity = self.scores([text])
        score, threshold = float(score_array[0]), self.threshold
        signal = f" (toxicity {toxicity[0]:.2f})" if self.model.head.uses_heuristics else ""
        if score < threshold:
            return CheckResult(False, f"safety score {score:.2f} < {threshold:.2f}{signal}", score=score)
        detail = f"safety score {score:.2f} >= {threshold:.2f}{signal}"
        if self.action != "mask":
            return CheckResult(True, detail, score=score)
        return CheckResult(True, detail, masked_text=self._masked(text, threshold), score=score)

    def _masked(self, text: str, threshold: float) -> str:
        """`text` without its unsafe sentences, or `SAFE_REFUSAL` when none stands out or most are unsafe."""
        sentences = split_sentences(text)
        if len(sentences) < 2:
            return SAFE_REFUSAL
        unsafe = self.scores(sentences)[0] >= threshold
        if not unsafe.any() or unsafe.sum() > len(sentences) / 2:
            return SAFE_REFUSAL
        return " ".join(s for s, bad in zip(sentences, unsafe, strict=True) if not bad)
