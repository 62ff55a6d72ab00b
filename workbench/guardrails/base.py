"""What every guardrail check is: `inspect(text, state) -> CheckResult`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel

from workbench.core.errors import ConfigError
from workbench.core.protocols import Embedder
from workbench.core.schema import RouteConfig
from workbench.core.state import Action, RequestState


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one text.

    `masked_text` is the text with the offending parts replaced, when the check can mask.
    `score` is the check's own measure (risk or support), for logging.
    """

    triggered: bool
    detail: str = ""
    masked_text: str | None = None
    score: float | None = None


@dataclass(frozen=True)
class CheckContext:
    """What some checks need beyond their config: which side they guard, routes, an embedder."""

    side: str = "input"
    routes: dict[str, RouteConfig] = field(default_factory=dict)
    embedder: Embedder | None = None


class GuardCheck(ABC):
    """One guardrail check. Constructors are cheap; heavy engines load on first `inspect`."""

    name: ClassVar[str]
    sides: ClassVar[frozenset[str]] = frozenset({"input", "output"})
    actions: ClassVar[frozenset[Action]] = frozenset({"block", "mask", "flag"})

    def __init__(self, config: Any, context: CheckContext | None = None) -> None:
        self.config = config
        self.context = context or CheckContext()

    @property
    def action(self) -> Action:
        return self.config.action  # type: ignore[no-any-return]

    def validate_for(self, side: str) -> None:
        """Raise `ConfigError` if this check cannot run on `side` or cannot do its action."""
        if side not in self.sides:
            raise ConfigError(
                f"guardrail check {self.name!r} runs on {', '.join(sorted(self.sides))} only, not on {side}"
            )
        if self.action not in self.actions:
            valid = ", ".join(sorted(self.actions))
            raise ConfigError(f"guardrail check {self.name!r} cannot {self.action!r}; valid actions: {valid}")

    def warm_up(self) -> None:  # noqa: B027 - optional hook, a no-op for light checks
        """Build any heavy engine ahead of the first request."""

    def fingerprint(self) -> Any:
        """What decides verdicts beyond the config and the code, for cache keys (e.g. a weights
        file's digest); None for checks that are all code."""
        return None

    @abstractmethod
    def inspect(self, text: str, state: RequestState) -> CheckResult:
        """Inspect `text` (the query on input, the answer on output) in the context of `state`."""


def config_dump(config: Any) -> Any:
    return config.model_dump(mode="json") if isinstance(config, BaseModel) else config
