"""`groundedness` (output only): is the answer supported by the retrieved chunks?

Scored at claim level by the faithfulness scorer itself (`core.claims`, the same arithmetic as
the `claim_support` metric): each sentence is reduced to what it adds to the question, so a
sentence that only restates the question is no claim and is neither counted nor masked; each
claim's support in [0, 1] is its lexical support against the best chunk sentence, or its
embedding support when an `Embedder` is injected and that is higher. The score is the mean over
claims (the `claim_support` score); below `threshold` the check triggers, its reason lists the
unsupported claims (support below `threshold`), and masking removes exactly those. Abstentions
(`core.text.is_abstention`, the pipeline's own definition) are never flagged.
"""

from __future__ import annotations

from typing import Any

from workbench.core.claims import ClaimScorer, ClaimScores, claims_of, context_sentences
from workbench.core.schema import GroundednessCheck
from workbench.core.state import RequestState
from workbench.core.text import ABSTAIN_TEXT, is_abstention, split_sentences, structured_answer
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
    """Flags answers whose claims the retrieved chunks do not support.

    Masking removes the unsupported claims' sentences (or answers "I don't know." when no
    supported claim is left).
    """

    name = "groundedness"
    sides = frozenset({"output"})
    config: GroundednessCheck
    scorer = ClaimScorer()

    def claim_scores(self, prose: str, question: str, chunks: list[str]) -> ClaimScores | None:
        """Each claim of `prose` beyond `question` with its support by `chunks`; None if it claims nothing."""
        claims = claims_of(prose, question)
        if not claims:
            return None
        embedder = self.context.embedder
        return self.scorer.score(claims, context_sentences(chunks), embedder.embed if embedder else None)

    def inspect(self, text: str, state: RequestState) -> CheckResult:
        prose, abstained = _answer_text(text, state, self.context.routes)
        if abstained:
            return CheckResult(False, "answer abstains; not checked")
        chunks = [c.text for c in state.chunks]
        if not chunks:
            return CheckResult(True, "no retrieved chunks support the answer", masked_text=ABSTAIN_TEXT, score=0.0)
        scores = self.claim_scores(prose, state.query, chunks)
        if scores is None:
            return CheckResult(False, "the answer makes no claim")
        threshold = self.config.threshold
        score = scores.score
        n = len(scores.claims)
        if score >= threshold:
            return CheckResult(False, f"claim support {score:.2f} >= {threshold:.2f} over {n} claims", score=score)
        pairs = list(zip(scores.claims, scores.support, strict=True))
        unsupported = [c.sentence for c, s in pairs if s < threshold]
        listed = "; ".join(repr(s[:80]) for s in unsupported)
        kept = [p for p in split_sentences(prose) if p not in set(unsupported)]
        supported = len(unsupported) < n
        return CheckResult(
            True,
            f"claim support {score:.2f} < {threshold:.2f}; unsupported {len(unsupported)} of {n} claims: {listed}",
            masked_text=" ".join(kept) if supported else ABSTAIN_TEXT,
            score=score,
        )
