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

from pathlib import Path

import numpy as np

from workbench.core.schema import SafetyCheck
from workbench.core.state import RequestState
from workbench.core.text import split_sentences
from workbench.guardrails._attack_head import Head, clip
from workbench.guardrails._head_check import EmbeddingHeadCheck
from workbench.guardrails._safety_head import SafetyHead, load_safety_head, shipped_path
from workbench.guardrails.base import CheckResult

__all__ = ["SAFE_REFUSAL", "SafetyGuard"]

SAFE_REFUSAL = "I can't help with that."


class SafetyGuard(EmbeddingHeadCheck):
    """Triggers at `score >= threshold`; the head and its default threshold load on first use."""

    name = "safety"
    what = "safety head"
    sides = frozenset({"output"})
    config: SafetyCheck

    def load(self) -> SafetyHead:
        return load_safety_head(self.config.weights, toxicity=self.config.toxicity)

    def shipped(self) -> Path:
        return shipped_path()

    def head_of(self, loaded: SafetyHead) -> Head:
        return loaded.head

    @property
    def model(self) -> SafetyHead:
        return self.loaded  # type: ignore[no-any-return]

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
