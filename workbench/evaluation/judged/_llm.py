"""The seam between ragas and our models: a ragas `InstructorBaseRagasLLM` that answers through a
call to a model endpoint, and a ragas embedding over our `Embedder`.

Structured output works by sending the response model's JSON schema as
`GenerationRequest.json_schema`: llama.cpp turns it into a grammar and constrains decoding, an
OpenAI-compatible server receives it as `response_format`. The reply is validated with the
same pydantic model; an invalid reply is sent back with the validation error for another try,
and after the last try a `JudgeParseError` carries how many retries were spent.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from workbench.core.errors import JudgeParseError, MissingDependency
from workbench.core.protocols import Completion, Embedder, GenerationRequest

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)


def short(text: str, limit: int = 240) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def bounded_schema(schema: dict[str, Any], max_items: int | None) -> dict[str, Any]:
    """A copy of `schema` where every array without bounds gets `minItems: 1` and `maxItems`.
    Under a grammar a small model otherwise answers `{"statements": []}` (nothing to judge), or
    repeats list items until `max_tokens` cuts the JSON in half."""
    if max_items is None:
        return schema
    out = copy.deepcopy(schema)

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "array":
                node.setdefault("minItems", 1)
                node.setdefault("maxItems", max_items)
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(out)
    return out


def _describe(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return short(f"{first['msg']}" + (f" at {where}" if where else "") + more, 200)


def _strip_fences(text: str) -> str:
    # Endpoints without schema support sometimes wrap JSON in a markdown fence.
    text = text.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    return text.strip()


Call = Callable[[GenerationRequest], Awaitable[Completion]]


@functools.cache
def _structured_llm_class() -> type:
    try:
        from ragas.llms.base import InstructorBaseRagasLLM
    except ImportError as exc:
        raise MissingDependency("ragas", "eval") from exc

    class StructuredLLM(InstructorBaseRagasLLM):  # type: ignore[misc]
        """`agenerate(prompt, response_model)` through our ChatModel with schema-constrained output."""

        def __init__(self, call: Call, params: dict[str, Any], max_parse_retries: int, max_items: int | None) -> None:
            self._call = call
            self._params = params
            self._max_retries = max_parse_retries
            self._max_items = max_items
            self.retries = 0
            self.calls = 0

        async def agenerate(self, prompt: str, response_model: type[T]) -> T:
            schema = bounded_schema(response_model.model_json_schema(), self._max_items)
            messages: list[dict[str, str]] = [{"role": "user", "content": prompt}]
            last_error = ""
            for attempt in range(self._max_retries + 1):
                if attempt:
                    self.retries += 1
                request = GenerationRequest(
                    question=prompt, messages=tuple(messages), params=dict(self._params), json_schema=schema
                )
                self.calls += 1
                completion = await self._call(request)
                log.debug("judge reply for %s: %s", response_model.__name__, short(completion.text, 400))
                try:
                    return response_model.model_validate_json(_strip_fences(completion.text))
                except ValidationError as exc:
                    last_error = f"{response_model.__name__}: {_describe(exc)}"
                    log.debug("judge reply did not parse (attempt %d): %s", attempt + 1, last_error)
                    # Show the model its own reply and the error, as instructor does on a retry.
                    messages = [
                        {"role": "user", "content": prompt},
                        {"role": "assistant", "content": completion.text},
                        {
                            "role": "user",
                            "content": f"That reply is not valid: {last_error}. "
                            "Reply again with only a JSON object matching the schema.",
                        },
                    ]
            raise JudgeParseError(
                f"parse failure: {last_error} (after {self._max_retries + 1} attempts)", retries=self.retries
            )

        def generate(self, prompt: str, response_model: type[T]) -> T:
            return asyncio.run(self.agenerate(prompt, response_model))

    return StructuredLLM


def structured_llm(call: Call, *, params: dict[str, Any], max_parse_retries: int, max_items: int | None) -> Any:
    """A fresh ragas LLM for scoring one item; `.retries` and `.calls` count what it spent."""
    return _structured_llm_class()(call, params, max_parse_retries, max_items)


@functools.cache
def _embedding_class() -> type:
    try:
        from ragas.embeddings.base import BaseRagasEmbedding
    except ImportError as exc:
        raise MissingDependency("ragas", "eval") from exc

    class EmbedderAdapter(BaseRagasEmbedding):  # type: ignore[misc]
        def __init__(self, embedder: Embedder) -> None:
            super().__init__(cache=None)
            self._embedder = embedder

        def embed_text(self, text: str, **kwargs: Any) -> list[float]:
            return [float(x) for x in self._embedder.embed([text])[0]]

        async def aembed_text(self, text: str, **kwargs: Any) -> list[float]:
            return await asyncio.to_thread(self.embed_text, text)

        def embed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
            return [[float(x) for x in row] for row in self._embedder.embed(list(texts))]

        async def aembed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
            return await asyncio.to_thread(self.embed_texts, texts)

    return EmbedderAdapter


def ragas_embedding(embedder: Embedder) -> Any:
    """Our `Embedder` as a ragas `BaseRagasEmbedding` (batch calls stay batched)."""
    return _embedding_class()(embedder)
