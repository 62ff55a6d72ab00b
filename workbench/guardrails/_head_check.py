"""What the `attack` and `safety` checks share: a head on the pipeline's embedder, loaded from a
weights file on first use, whose digest is the check's fingerprint."""

from __future__ import annotations

import hashlib
import threading
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from workbench.core.errors import ConfigError
from workbench.guardrails._attack_head import Head
from workbench.guardrails.base import CheckContext, GuardCheck


class EmbeddingHeadCheck(GuardCheck):
    """A check scored by a `Head` over the embedder's vectors. Subclasses say how to load their
    weights (`load`), where the shipped file is (`shipped`) and where the head sits in what they
    load (`head_of`); the config has `weights` and an optional `threshold`."""

    what: ClassVar[str]  # "attack head", "safety head": names the file in errors

    def __init__(self, config: Any, context: CheckContext | None = None) -> None:
        super().__init__(config, context)
        self._loaded: Any = None
        self._lock = threading.Lock()

    @abstractmethod
    def load(self) -> Any:
        """Read the weights file named by the config (or the shipped one)."""

    @abstractmethod
    def shipped(self) -> Path:
        """The weights file inside the package."""

    def head_of(self, loaded: Any) -> Head:
        return loaded  # type: ignore[no-any-return]

    def validate_for(self, side: str) -> None:
        super().validate_for(side)
        if self.context.embedder is None:
            raise ConfigError(f"guardrail check {self.name!r} needs an embedder; build its stage with one")

    @property
    def loaded(self) -> Any:
        if self._loaded is None:
            with self._lock:
                if self._loaded is None:
                    loaded = self.load()
                    head, embedder = self.head_of(loaded), self.context.embedder
                    if embedder is not None and embedder.dim != head.dim:
                        raise ConfigError(
                            f"the {self.what} was trained on {head.embedder} ({head.dim} dimensions); "
                            f"the pipeline's embedder has {embedder.dim}"
                        )
                    self._loaded = loaded
        return self._loaded

    def fingerprint(self) -> str:
        """The weights file's digest: a retrained head must not reuse cached verdicts."""
        path = Path(self.config.weights) if self.config.weights is not None else self.shipped()
        try:
            return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        except OSError as exc:
            raise ConfigError(f"{self.what} not found: {path}") from exc

    @property
    def threshold(self) -> float:
        configured: float | None = self.config.threshold
        return configured if configured is not None else self.head_of(self.loaded).threshold

    def warm_up(self) -> None:
        _ = self.loaded
        warm = getattr(self.context.embedder, "warm_up", None)
        if warm is not None:
            warm()
