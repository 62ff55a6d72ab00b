"""The two plain records `calibrate`'s modules pass around: a labelled example and the fit's
settings. Kept apart so the labels reader, the check scorers and the fit can all name them
without importing each other."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workbench.core.errors import ConfigError


@dataclass(frozen=True)
class LabelledExample:
    """One line of a labels file: the text(s) and the labels it carries."""

    id: Any
    text: str | None = None
    question: str | None = None
    answer: str | None = None
    contexts: list[str] | None = None
    route: str | None = None
    labels: dict[str, bool] = field(default_factory=dict)


@dataclass
class Settings:
    """What the fit aims at."""

    objective: str = "fpr"  # "fpr" or "f1"
    target_fpr: float = 0.01
    conservative: bool = False
    route_objective: str = "accuracy"
    route_target: float = 0.05
    min_examples: int = 10
    seed: int = 0

    def validate(self) -> Settings:
        for name in ("target_fpr", "route_target"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be a rate in [0, 1), got {getattr(self, name)}")
        if self.min_examples < 1:
            raise ConfigError("--min-examples must be at least 1")
        return self
