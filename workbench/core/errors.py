"""The workbench error tree. Every error a user can cause is one of these.

    WorkbenchError
    ├── ConfigError            bad or missing config key, unknown registry name
    ├── DatasetError           malformed dataset row, empty corpus, missing files
    │   └── DatasetExists      a dataset folder to write already exists
    ├── GuardrailBlocked       an input/output check blocked the request
    │   └── InputTooLarge      the question exceeds the size limit
    ├── RoutingError           unknown route
    ├── ToolError              a tool's arguments did not validate, or its call failed
    ├── ProviderError          a model endpoint failed
    │   ├── ProviderTimeout
    │   ├── RateLimited
    │   ├── ProviderRejected   answered but refused (4xx, prompt too long): never retried
    │   └── ProviderUnavailable  endpoint down
    │       └── CircuitOpen    the endpoint's breaker is open
    ├── EvaluationError
    │   └── JudgeParseError    a judge reply did not parse, after every retry
    ├── TrackingError          an MLflow call or a results write failed
    ├── InvalidFeedback        feedback that is not thumbs up/down
    ├── BundleError            bundle integrity
    ├── AuthError
    ├── QuotaExceeded          the gateway's rate limit or team quota refused a request (429)
    │   └── PaymentRequired    the team's daily dollar budget is spent (402)
    ├── LimiterUnavailable     the shared limiter store (Redis) is unreachable, failing closed
    └── MissingDependency      an optional extra is not installed

The CLI prints any of these as one line and exits non-zero; anything else is a bug.
"""

from __future__ import annotations

from typing import Any


class WorkbenchError(Exception):
    """Root of every error the workbench raises on purpose."""

    exit_code = 2


class ConfigError(WorkbenchError):
    """A config file or value is missing, unknown or invalid."""


class DatasetError(WorkbenchError):
    """A dataset or corpus is missing, empty or has a malformed row."""


class GuardrailBlocked(WorkbenchError):
    """A guardrail check blocked the request."""

    def __init__(self, message: str, check: str = "") -> None:
        super().__init__(message)
        self.check = check


class InputTooLarge(GuardrailBlocked):
    """The question is over the configured size limit."""


class RoutingError(WorkbenchError):
    """A route name is unknown or no route could be chosen."""


class ToolError(WorkbenchError):
    """A tool route could not answer: the model's arguments did not validate against the tool's
    schema, or the call failed (division by zero, an SQL error, a forbidden statement).

    `tool` names the tool; `call` is the failed call's record (`core.state.ToolCall`) once the
    tool stage has made one."""

    def __init__(self, message: str, tool: str = "") -> None:
        super().__init__(message)
        self.tool = tool
        self.call: Any = None


class ProviderError(WorkbenchError):
    """A model provider call failed."""

    retryable = True


class ProviderTimeout(ProviderError):
    """The provider did not answer in time."""


class RateLimited(ProviderError):
    """The provider refused the call for rate limiting."""


class ProviderUnavailable(ProviderError):
    """The endpoint is down, unreachable, or its circuit breaker is open."""


class EvaluationError(WorkbenchError):
    """Scoring failed or was asked something invalid."""


class TrackingError(WorkbenchError):
    """Logging a run (MLflow) or writing its results (parquet, DuckDB) failed."""


class BundleError(WorkbenchError):
    """A bundle is missing files or fails its integrity check."""


class AuthError(WorkbenchError):
    """A request carried no or a wrong credential."""


class MissingDependency(WorkbenchError):
    """An optional dependency is not installed; the message names the extra."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(f"{package} is not installed; install it with: pip install 'workbench[{extra}]'")
        self.package = package
        self.extra = extra


class DatasetExists(DatasetError):
    """The dataset folder to write already exists; datasets are never overwritten."""


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


class JudgeParseError(EvaluationError):
    """The judge's reply was not valid JSON for the expected schema, after every retry."""

    def __init__(self, message: str, retries: int) -> None:
        super().__init__(message)
        self.retries = retries


class InvalidFeedback(WorkbenchError):
    """A feedback value is not one the workbench accepts (thumbs must be 'up' or 'down')."""


class QuotaExceeded(WorkbenchError):
    """The gateway refused a request: a key's or team's rate limit (requests or tokens per
    minute) or daily token quota is used up. Not `RateLimited`, which is a provider limiting us.

    `retry_after`: seconds until the request could pass; `remaining`: what is left of the budget
    by kind ("requests", "tokens"), for the `x-ratelimit-remaining-*` headers."""

    def __init__(self, message: str, *, retry_after: float, remaining: dict[str, int] | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.remaining = dict(remaining or {})


class PaymentRequired(QuotaExceeded):
    """The team's daily dollar budget is spent."""


class LimiterUnavailable(WorkbenchError):
    """The limiter's shared store (Redis) is unreachable and the policy is to fail closed."""

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after
