"""The metric contract every score goes through, offline, ragas or LLM-judged.

A metric never turns a failure into a number: a judge that could not be parsed yields
`MetricResult(value=None, failed=True, error=...)`, and the scoring path counts it.
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

MetricKind = Literal["offline", "ragas", "judge"]


class Span(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    doc_id: str
    start: int
    end: int


class ScoreInput(BaseModel):
    """One row to score. `question`, `answer` and `contexts` are required; the rest enable
    more metrics (reference answers, gold evidence spans, retrieved chunk spans, answerability)."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    question_id: str | None = None
    question: str
    answer: str
    contexts: list[str]
    reference: str | None = None
    reference_contexts: list[str] | None = None
    retrieved: list[Span] | None = Field(None, description="spans of the contexts, in rank order")
    evidence: list[Span] | None = Field(None, description="gold evidence spans")
    answerable: bool | None = None
    abstained: bool | None = None


class MetricResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    value: float | None
    failed: bool = False
    error: str | None = None
    retries: int = 0
    judge: str | None = None
    prompt_version: str | None = None
    samples: tuple[float, ...] = ()  # repeated judgments, when asked for

    @property
    def variance(self) -> float | None:
        if len(self.samples) < 2:
            return None
        mean = sum(self.samples) / len(self.samples)
        return sum((s - mean) ** 2 for s in self.samples) / (len(self.samples) - 1)


@runtime_checkable
class Metric(Protocol):
    """A named score for one `ScoreInput`. `requires` names the ScoreInput fields it needs;
    rows lacking them are skipped (value None, not failed) and reported as not applicable."""

    name: str
    kind: MetricKind
    requires: tuple[str, ...]

    async def ascore(self, item: ScoreInput) -> MetricResult: ...
