"""The workbench error tree. Every error a user can cause is one of these.

    WorkbenchError
    ├── ConfigError            bad or missing config key, unknown registry name
    ├── DatasetError           malformed dataset row, empty corpus, missing files
    ├── GuardrailBlocked       an input/output check blocked the request
    │   └── InputTooLarge      the question exceeds the size limit
    ├── RoutingError           unknown route
    ├── ProviderError          a model endpoint failed
    │   ├── ProviderTimeout
    │   ├── RateLimited
    │   └── ProviderUnavailable  endpoint down or circuit open
    ├── EvaluationError
    ├── TrackingError          an MLflow call or a results write failed
    ├── BundleError            bundle integrity
    ├── AuthError
    └── MissingDependency      an optional extra is not installed

The CLI prints any of these as one line and exits non-zero; anything else is a bug.
"""

from __future__ import annotations


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
