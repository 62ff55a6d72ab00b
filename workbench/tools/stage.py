"""`ToolStage`: validate the model's JSON arguments, call the tool, answer with its output.

A tool route is two stages: the route's generator, asked for JSON constrained by the tool's
argument schema (see `tool_prompt`), then this stage. The output guards after the route switch
then judge the tool's output as they judge any answer.
"""

from __future__ import annotations

import json
import time
from typing import Any, ClassVar

from workbench.core.errors import ToolError
from workbench.core.schema import PromptTemplate
from workbench.core.stage import Stage
from workbench.core.state import Chunk, RequestState, ToolCall
from workbench.tools.base import Tool


def tool_prompt(tool: Tool) -> PromptTemplate:
    """The default prompt asking a model for `tool`'s arguments. The schema goes in the system
    message, which is not formatted, so its braces need no escaping."""
    schema = json.dumps(tool.json_schema(), separators=(",", ":"))
    system = (
        f"You turn the user's question into the arguments of the {tool.name} tool. "
        f"{tool.description} Reply with one JSON object matching this schema, and nothing else: {schema}"
    )
    return PromptTemplate(system=system, template="{question}{context}")


class ToolStage(Stage):
    """Reads the model's answer (the arguments); writes the tool's output as the answer.

    The output also becomes the request's one chunk, so the groundedness guard and judges see
    what the answer rests on. A failure raises `ToolError` with the failed call on `.call`.
    Never cached: a clock or a database gives a different answer to the same arguments.
    """

    kind = "tool"
    reads: ClassVar[tuple[str, ...]] = ("answer", "route")
    writes: ClassVar[tuple[str, ...]] = ("answer", "abstained", "chunks", "tool_calls")
    cacheable = False

    def __init__(self, tool: Tool, name: str | None = None) -> None:
        super().__init__(tool.config, name)
        self.tool = tool

    def warm_up(self) -> None:
        self.tool.warm_up()

    def config_fingerprint(self) -> Any:
        return {"tool": self.tool.name, "config": super().config_fingerprint()}

    def run(self, state: RequestState) -> RequestState:
        if state.answer is None:
            return state  # no arguments were asked for (a retrieval-only pipeline)
        started = time.perf_counter()
        arguments: dict[str, Any] | str = state.answer
        try:
            args = self.tool.parse(state.answer)
            arguments = args.model_dump(mode="json")
            result = self.tool.run(args)
        except ToolError as exc:
            exc.call = ToolCall(
                tool=self.tool.name, arguments=arguments, error=str(exc), seconds=time.perf_counter() - started
            )
            raise
        call = ToolCall(
            tool=self.tool.name, arguments=arguments, output=result.text, seconds=time.perf_counter() - started
        )
        evidence = Chunk(
            chunk_id=f"tool:{self.tool.name}:{len(state.tool_calls)}",
            doc_id=f"tool:{self.tool.name}",
            text=result.text,
            start=0,
            end=len(result.text),
            score=1.0,
        )
        return state.model_copy(
            update={
                "answer": result.text,
                "abstained": False,
                "chunks": (*state.chunks, evidence),
                "tool_calls": (*state.tool_calls, call),
            }
        )
