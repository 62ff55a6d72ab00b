"""The immutable request state every stage takes and returns."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Action = Literal["block", "mask", "flag"]

# Fields every stage appends to rather than replaces; the stage cache stores only the part a
# stage appended (see `core/stage.py`).
ACCUMULATING: frozenset[str] = frozenset({"verdicts", "calls", "timings", "tool_calls"})


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Chunk(Frozen):
    """A retrieved chunk with its character offsets into the source document."""

    chunk_id: str
    doc_id: str
    text: str
    start: int
    end: int
    score: float = 0.0
    scores: dict[str, float] = Field(default_factory=dict)


class GuardVerdict(Frozen):
    stage: str
    check: str
    triggered: bool
    action: Action
    detail: str = ""


class ModelCall(Frozen):
    """One call to a model endpoint, with usage and cost."""

    endpoint: str
    model: str
    tokens_in: int
    tokens_out: int
    cost: float
    latency_s: float
    attempts: int = 1
    fallback_from: str | None = None


class ToolCall(Frozen):
    """One call of a tool: the validated arguments (or the raw text that failed to validate),
    its output text, or the error that stopped it."""

    tool: str
    arguments: dict[str, Any] | str
    output: str | None = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


class ModelChoice(Frozen):
    """Which model a route's selection policy picked for this request, and why."""

    model: str
    policy: str
    reason: str
    complexity: float | None = None


class StageTiming(Frozen):
    stage: str
    seconds: float
    cached: bool = False
    started_at: float = 0.0  # epoch seconds, so traces can place each stage in time


class RequestState(Frozen):
    """Everything a request accumulates on its way through the pipeline."""

    request_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    query: str
    route: str | None = None
    route_score: float | None = None
    chunks: tuple[Chunk, ...] = ()
    prompt: str | None = None
    answer: str | None = None
    abstained: bool = False
    blocked: bool = False
    verdicts: tuple[GuardVerdict, ...] = ()
    calls: tuple[ModelCall, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    model_choice: ModelChoice | None = None
    timings: tuple[StageTiming, ...] = ()

    @property
    def tokens_in(self) -> int:
        return sum(c.tokens_in for c in self.calls)

    @property
    def tokens_out(self) -> int:
        return sum(c.tokens_out for c in self.calls)

    @property
    def cost(self) -> float:
        return sum(c.cost for c in self.calls)

    @property
    def fallback_used(self) -> bool:
        return any(c.fallback_from for c in self.calls)

    def with_verdicts(self, *verdicts: GuardVerdict) -> RequestState:
        return self.model_copy(update={"verdicts": self.verdicts + tuple(verdicts)})
