"""Models layer: chat model providers, the endpoint pool (retries, breakers, fallbacks) and the
generator stage. Providers load lazily, so importing this package needs no heavy dependency."""

from workbench.models._errors import CircuitOpen, ProviderRejected
from workbench.models.breaker import CircuitBreaker
from workbench.models.endpoints import EndpointPool, provider_registry
from workbench.models.extractive import ExtractiveModel
from workbench.models.generator import GeneratorConfig, GeneratorStage
from workbench.models.llama_cpp import LlamaCppModel
from workbench.models.openai_compat import OpenAICompatModel
from workbench.models.retry import aretry, backoff_delay, retry

__all__ = [
    "CircuitBreaker",
    "CircuitOpen",
    "EndpointPool",
    "ExtractiveModel",
    "GeneratorConfig",
    "GeneratorStage",
    "LlamaCppModel",
    "OpenAICompatModel",
    "ProviderRejected",
    "aretry",
    "backoff_delay",
    "provider_registry",
    "retry",
]
