"""What every tool is: a typed argument model (its JSON schema constrains the model's output)
and `run(args) -> ToolResult`."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sized
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from workbench.core.errors import ToolError


class ToolArgs(BaseModel):
    """Base of every argument model: unknown keys are errors, as in configs.

    The model's JSON schema becomes llama.cpp grammar, whose converter mishandles some of JSON
    schema: write patterns with `[0-9]`, never `\\d`, and bound lengths with `at_most` rather
    than `max_length` (each allowed character would become one more nested grammar rule)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def at_most(limit: int) -> AfterValidator:
    """A length limit checked on validation but left out of the JSON schema (see `ToolArgs`)."""

    def check(value: Sized) -> Sized:
        if len(value) > limit:
            raise ValueError(f"at most {limit} allowed, got {len(value)}")
        return value

    return AfterValidator(check)


@dataclass(frozen=True)
class ToolResult:
    """A tool's output: `value` (JSON-able, for logs and tests) and `text` (the answer)."""

    value: Any
    text: str


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ToolContext:
    """What tools need beyond their config: the root relative paths resolve against, and a
    clock (injectable, so date tests do not depend on the day they run)."""

    root: Path = Path(".")
    now: Callable[[], datetime] = field(default=_utc_now)


class Tool(ABC):
    """One tool. Constructors are cheap; connections open on first call."""

    name: ClassVar[str]
    description: ClassVar[str]
    args_model: ClassVar[type[ToolArgs]]

    def __init__(self, config: Any, context: ToolContext | None = None) -> None:
        self.config = config
        self.context = context or ToolContext()

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The argument model's JSON schema: what the model's output is constrained to."""
        return cls.args_model.model_json_schema()

    def parse(self, text: str) -> ToolArgs:
        """The model's JSON as validated arguments; `ToolError` if it is not JSON or not valid."""
        try:
            return self.args_model.model_validate(json.loads(text))
        except json.JSONDecodeError as exc:
            raise ToolError(f"{self.name}: the model's arguments are not JSON ({exc.msg})", self.name) from exc
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "arguments"
            raise ToolError(f"{self.name}: invalid arguments: {where}: {err['msg']}", self.name) from exc

    def warm_up(self) -> None:  # noqa: B027 - optional hook, most tools have nothing to load
        """Open connections ahead of the first call."""

    @abstractmethod
    def run(self, args: Any) -> ToolResult:
        """Call the tool; raise `ToolError` for a failure the arguments caused."""

    def fail(self, message: str) -> ToolError:
        return ToolError(f"{self.name}: {message}", self.name)
