"""Error helpers of the models layer; its errors live in the core error tree."""

from __future__ import annotations

from workbench.core.errors import CircuitOpen, ProviderRejected
from workbench.core.redact import redact_text

__all__ = ["CircuitOpen", "ProviderRejected", "one_line"]


def one_line(exc: BaseException, limit: int = 300) -> str:
    """`Type: message` on a single line, credentials redacted, cut to `limit` characters."""
    text = " ".join(redact_text(str(exc)).split()) or "(no message)"
    text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= limit else text[: limit - 3] + "..."
