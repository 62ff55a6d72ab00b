"""Answer metrics against a reference (SQuAD exact match and token F1) and abstention."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any, ClassVar

from workbench.core.text import answer_tokens, is_abstention, normalize_answer
from workbench.evaluation.base import ScoreInput
from workbench.evaluation.metrics._ragas import RagasBaseMetric, RagasMetric, RagasResult

__all__ = ["ExactMatch", "TokenF1", "Abstention", "exact_match_score", "token_f1_score"]


def exact_match_score(response: str, reference: str) -> float:
    return float(normalize_answer(response) == normalize_answer(reference))


def token_f1_score(response: str, reference: str) -> float:
    """SQuAD token F1 over normalised tokens; two empty answers agree."""
    pred, gold = answer_tokens(response), answer_tokens(reference)
    if not pred or not gold:
        return float(pred == gold)
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


class _ReferenceScore(RagasBaseMetric):
    def __init__(self, name: str, fn: Any) -> None:
        super().__init__(name=name, allowed_values=(0.0, 1.0))
        self.fn = fn

    async def ascore(self, response: str, reference: str) -> RagasResult:  # type: ignore[override]
        return RagasResult(value=self.fn(response, reference))


class _AgainstReference(RagasMetric):
    requires: ClassVar[tuple[str, ...]] = ("answer", "reference")

    def inputs(self, item: ScoreInput) -> Mapping[str, Any]:
        return {"response": item.answer, "reference": item.reference}


class ExactMatch(_AgainstReference):
    """1 if the answer equals the reference after SQuAD normalisation."""

    def __init__(self, name: str = "exact_match") -> None:
        super().__init__(name, _ReferenceScore(name, exact_match_score))


class TokenF1(_AgainstReference):
    """SQuAD token-overlap F1 between answer and reference."""

    def __init__(self, name: str = "token_f1") -> None:
        super().__init__(name, _ReferenceScore(name, token_f1_score))


class _AbstentionScore(RagasBaseMetric):
    def __init__(self, name: str) -> None:
        super().__init__(name=name, allowed_values=(0.0, 1.0))

    async def ascore(self, answerable: bool, abstained: bool) -> RagasResult:  # type: ignore[override]
        return RagasResult(value=float(abstained == (not answerable)))


class Abstention(RagasMetric):
    """1 when the pipeline abstained exactly on the unanswerable questions. Uses the row's
    `abstained` flag, or, when the flag is missing, `core.text.is_abstention` of the answer (the
    definition the pipeline's own flag comes from)."""

    requires: ClassVar[tuple[str, ...]] = ("answerable",)

    def __init__(self, name: str = "abstention") -> None:
        super().__init__(name, _AbstentionScore(name))

    def inputs(self, item: ScoreInput) -> Mapping[str, Any]:
        abstained = item.abstained if item.abstained is not None else is_abstention(item.answer)
        return {"answerable": item.answerable, "abstained": abstained}
