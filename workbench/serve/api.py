"""The HTTP API's request and response bodies: what the OpenAPI schema publishes.

`/v1/chat/completions` follows OpenAI's chat completions shape so the official clients work
unchanged; the workbench's own view of a request (sources, route, guard verdicts, timings,
tokens, cost) travels in the `workbench` extension field of the response and of the final
stream chunk. Sampling fields a client may send (`temperature`, `max_tokens`, ...) are
validated and then ignored: the served pipeline is the evaluated one, with the bundle's own
parameters.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from workbench.core.state import Chunk, GuardVerdict, RequestState


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- errors -------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    message: str
    type: str = Field(description="error class, e.g. guardrail_blocked, invalid_request_error, service_unavailable")
    param: str | None = None
    code: str | None = Field(None, description="a finer code: the guardrail check, the error's class")
    request_id: str | None = None


class ErrorResponse(BaseModel):
    """Every error, on every endpoint, has this OpenAI-style shape."""

    error: ErrorDetail


# --- the workbench's view of a request ------------------------------------------------------


class Source(BaseModel):
    chunk_id: str
    doc_id: str
    start: int = Field(description="character offset of the chunk in its document")
    end: int
    score: float
    text: str


class Verdict(BaseModel):
    stage: str
    check: str
    triggered: bool
    action: Literal["block", "mask", "flag"]
    detail: str = ""


class ToolCallView(BaseModel):
    """One tool call: the validated arguments (or the raw text that failed), output or error."""

    tool: str
    arguments: dict[str, Any] | str
    output: str | None = None
    error: str | None = None
    seconds: float = 0.0


class ModelChoiceView(BaseModel):
    """Which candidate a route's selection policy picked, and why."""

    model: str
    policy: str
    reason: str
    complexity: float | None = None


class RequestView(BaseModel):
    """What the pipeline did for one request."""

    request_id: str
    route: str | None = None
    route_score: float | None = None
    sources: list[Source] = []
    verdicts: list[Verdict] = []
    timings: dict[str, float] = Field(default_factory=dict, description="seconds per pipeline stage")
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    models: list[str] = Field(default_factory=list, description="model endpoints called, in order")
    fallback_used: bool = False
    abstained: bool = False
    tool_calls: list[ToolCallView] = Field(default_factory=list, description="tools a tool route called, in order")
    model_choice: ModelChoiceView | None = Field(
        None, description="the model a route's selection policy picked, and why"
    )
    bundle_digest: str = ""

    @classmethod
    def of(cls, state: RequestState, digest: str) -> RequestView:
        return cls(**view_fields(state, digest))


def source(chunk: Chunk) -> Source:
    return Source(
        chunk_id=chunk.chunk_id,
        doc_id=chunk.doc_id,
        start=chunk.start,
        end=chunk.end,
        score=chunk.score,
        text=chunk.text,
    )


def verdict(v: GuardVerdict) -> Verdict:
    return Verdict(**v.model_dump())


def timings(state: RequestState) -> dict[str, float]:
    out: dict[str, float] = {}
    for t in state.timings:
        out[t.stage] = out.get(t.stage, 0.0) + t.seconds
    return out


def view_fields(state: RequestState, digest: str) -> dict[str, Any]:
    return {
        "request_id": state.request_id,
        "route": state.route,
        "route_score": state.route_score,
        "sources": [source(c) for c in state.chunks],
        "verdicts": [verdict(v) for v in state.verdicts],
        "timings": timings(state),
        "tokens_in": state.tokens_in,
        "tokens_out": state.tokens_out,
        "cost": state.cost,
        "models": [c.endpoint for c in state.calls],
        "fallback_used": state.fallback_used,
        "abstained": state.abstained,
        "tool_calls": [ToolCallView(**c.model_dump()) for c in state.tool_calls],
        "model_choice": ModelChoiceView(**state.model_choice.model_dump()) if state.model_choice else None,
        "bundle_digest": digest,
    }


# --- native endpoints ----------------------------------------------------------------------

Question = Annotated[str, Field(min_length=1, max_length=100_000, description="the question to answer")]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only whitespace")
    return value


class AskRequest(_Body):
    question: Question

    _check = field_validator("question")(_not_blank)


class AskResponse(RequestView):
    id: str = Field(description="the response id, for /v1/feedback")
    answer: str


class RetrieveRequest(_Body):
    question: Question

    _check = field_validator("question")(_not_blank)


class RetrieveResponse(BaseModel):
    id: str
    query: str = Field(description="the question as retrieval saw it, after input guards (masked)")
    route: str | None = None
    route_score: float | None = None
    chunks: list[Source]
    verdicts: list[Verdict]
    timings: dict[str, float]


class FeedbackRequest(_Body):
    response_id: str = Field(min_length=1, max_length=200, description="the id of a response of this server")
    thumbs: Literal["up", "down"]
    comment: str = Field("", max_length=5000, description="free text; PII is masked before it is stored")
    user: str = Field("user", min_length=1, max_length=200)


class FeedbackResponse(BaseModel):
    feedback_id: str
    response_id: str
    thumbs: Literal["up", "down"]
    comment: str = Field(description="the comment as stored (masked)")


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "workbench"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "pending", "failed"]
    mismatches: list[str] = Field(default_factory=list, description="golden-set questions that did not match")


class VersionInfo(BaseModel):
    bundle_digest: str
    config_name: str
    workbench_version: str


# --- OpenAI chat completions -----------------------------------------------------------------


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """OpenAI's request body. Fields OpenAI defines but the workbench does not use are accepted
    and ignored (extra="ignore"), so clients that send them keep working."""

    model_config = ConfigDict(extra="ignore")
    model: str = Field(min_length=1, description="the served model id (GET /v1/models)")
    messages: list[ChatMessage] = Field(min_length=1, description="the question is the last user message")
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1, le=1, description="only one choice is supported")
    max_tokens: int | None = Field(None, ge=1, description="validated, then the bundle's own value is used")
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2, description="validated, then the bundle's own value is used")
    top_p: float | None = Field(None, ge=0, le=1)
    user: str | None = None

    def question(self) -> str:
        """The last user message; ValueError if there is none or it is blank."""
        for message in reversed(self.messages):
            if message.role == "user":
                text = message.text()
                if not text.strip():
                    raise ValueError("the last user message is empty")
                return text
        raise ValueError("messages hold no user message")


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length", "content_filter"] = "stop"


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    workbench: RequestView = Field(description="extension: sources, route, guard verdicts, timings, cost")


class ChunkDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: ChunkDelta
    finish_reason: Literal["stop", "length", "content_filter"] | None = None


class ChatCompletionChunk(BaseModel):
    """One `data:` line of a stream. The last chunk before `data: [DONE]` has finish_reason
    "stop" and the `workbench` extension; a failure after the first byte is instead a
    `data: {"error": {...}}` line, and the stream ends without [DONE]."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    workbench: RequestView | None = None


def usage(state: RequestState) -> Usage:
    return Usage(
        prompt_tokens=state.tokens_in,
        completion_tokens=state.tokens_out,
        total_tokens=state.tokens_in + state.tokens_out,
    )
