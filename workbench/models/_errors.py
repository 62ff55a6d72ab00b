"""Provider errors specific to the models layer, as leaves of the core error tree."""

from __future__ import annotations

from workbench.core.errors import ProviderError, ProviderUnavailable


class ProviderRejected(ProviderError):
    """The provider answered but refused the request (a 4xx other than 429, a prompt over the
    context window). Sending the same request again cannot succeed, so it is never retried."""

    retryable = False


class CircuitOpen(ProviderUnavailable):
    """The endpoint's circuit breaker is open; calls fail fast until its cooldown ends."""

    retryable = False

    def __init__(self, endpoint: str) -> None:
        super().__init__(f"circuit open for endpoint {endpoint}")
        self.endpoint = endpoint


def one_line(exc: BaseException, limit: int = 300) -> str:
    """`Type: message` on a single line, cut to `limit` characters."""
    text = " ".join(str(exc).split()) or "(no message)"
    text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= limit else text[: limit - 3] + "..."
