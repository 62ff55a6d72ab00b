"""`GeneratorStage`: render the prompt from the question and chunks, call an endpoint."""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal

from pydantic import Field

from workbench.core.config import ConfigModel
from workbench.core.errors import ConfigError
from workbench.core.protocols import AnswerSink, Completion, GenerationRequest
from workbench.core.schema import PromptTemplate
from workbench.core.stage import Review, Stage
from workbench.core.state import Chunk, ModelCall, RequestState
from workbench.core.text import is_abstention, structured_answer
from workbench.models.endpoints import EndpointPool


class GeneratorConfig(ConfigModel):
    endpoint: str = Field(description="name of a model endpoint in the pool")
    prompt: PromptTemplate
    output: Literal["text", "json"] = "text"
    json_schema: dict[str, Any] | None = Field(None, description="constrains the output when output is json")
    max_context_chars: int = Field(4000, gt=0)


def render_context(chunks: tuple[Chunk, ...], max_chars: int) -> str:
    """Chunks numbered `[1] ...` in retrieval order, cut to `max_chars` in total."""
    parts: list[str] = []
    used = 0
    for i, chunk in enumerate(chunks, 1):
        part = f"[{i}] {' '.join(chunk.text.split())}"
        sep = 2 if parts else 0
        room = max_chars - used - sep
        if room <= 0:
            break
        if len(part) > room:
            parts.append(part[:room].rstrip())
            break
        parts.append(part)
        used += len(part) + sep
    return "\n\n".join(parts)


def says_unknown(text: str, output: Literal["text", "json"] = "text") -> bool:
    """Whether an answer abstains, by the workbench's one definition (`core.text`): prose such
    as "I don't know" or an empty answer; for a JSON answer, `"found": false` or fields that
    abstain. The groundedness guard and the abstention metric use the same definition."""
    if output == "json":
        try:
            return structured_answer(json.loads(text))[1]
        except ValueError:
            pass  # not JSON after all: judge it as prose
    return is_abstention(text)


class GeneratorStage(Stage):
    """Reads the query, chunks and route; writes the prompt, answer, abstention and model calls.

    `state.prompt` holds the rendered user message (the system message is in the config).
    """

    kind = "generator"
    reads: ClassVar[tuple[str, ...]] = ("query", "chunks", "route")
    writes: ClassVar[tuple[str, ...]] = ("prompt", "answer", "abstained", "calls")

    def __init__(self, config: GeneratorConfig, pool: EndpointPool, name: str | None = None) -> None:
        super().__init__(config, name)
        self.config: GeneratorConfig = config
        self.pool = pool

    def warm_up(self) -> None:
        self.pool.warm_up(self.pool.chain(self.config.endpoint))

    def config_fingerprint(self) -> Any:
        # The endpoint's own config (model, params, fallbacks) decides the answer too.
        return {"stage": self.config.model_dump(mode="json"), "endpoints": self.pool.fingerprint(self.config.endpoint)}

    def request(self, state: RequestState) -> GenerationRequest:
        cfg = self.config
        context = render_context(state.chunks, cfg.max_context_chars)
        try:
            user = cfg.prompt.template.format(question=state.query, context=context)
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(f"prompt template for stage {self.name!r} cannot be rendered: {exc}") from exc
        messages = ({"role": "system", "content": cfg.prompt.system},) if cfg.prompt.system else ()
        schema = (cfg.json_schema or {"type": "object"}) if cfg.output == "json" else None
        # A stop sequence meant for short text answers (a newline) would cut a JSON object.
        params = {"stop": None} if schema is not None else {}
        return GenerationRequest(
            question=state.query,
            chunks=state.chunks,
            messages=(*messages, {"role": "user", "content": user}),
            params=params,
            json_schema=schema,
        )

    def _update(
        self, state: RequestState, request: GenerationRequest, result: tuple[Completion, list[ModelCall]]
    ) -> RequestState:
        completion, calls = result
        return state.model_copy(
            update={
                "prompt": request.messages[-1]["content"],
                "answer": completion.text,
                "abstained": completion.abstained or says_unknown(completion.text, self.config.output),
                "calls": state.calls + tuple(calls),
            }
        )

    def run(self, state: RequestState) -> RequestState:
        request = self.request(state)
        return self._update(state, request, self.pool.complete(self.config.endpoint, request))

    async def arun(self, state: RequestState) -> RequestState:
        request = self.request(state)
        return self._update(state, request, await self.pool.acomplete(self.config.endpoint, request))

    async def astream(self, state: RequestState, sink: AnswerSink, review: Review | None = None) -> RequestState:
        """`arun`, streaming the answer to `sink`. A draft of it is judged as the final answer
        will be: the same state, with the stages after this one (`review`) applied; a JSON
        answer is only judged whole."""
        request = self.request(state)

        async def check(text: str) -> RequestState:
            draft = state.model_copy(
                update={
                    "prompt": request.messages[-1]["content"],
                    "answer": text,
                    "abstained": says_unknown(text, self.config.output),
                }
            )
            return draft if review is None else await review(draft)

        sink.begin(None if self.config.output == "json" else check)
        return self._update(state, request, await self.pool.astream(self.config.endpoint, request, sink))
