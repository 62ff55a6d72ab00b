"""What an endpoint's answers depend on besides its config: the implementation behind it.

One definition, used by `EndpointPool.fingerprint` (stage cache keys) and by the judge's cache
key, so a new model package, a different GGUF or a fix in a provider never serves old answers:

- every provider: its code version (`core.implementation.code_version`, the rule stages use);
- llama_cpp: the version of the package shipping the GGUF (if one does), the file's name and
  sha256, and the version of llama-cpp-python running it;
- openai_compat: the base URL with credentials redacted, and the model id (the server's
  weights are beyond reach; the model id is the best available name for them);
- extractive: its code version is its whole implementation.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from pathlib import Path
from typing import Any

from workbench.core.errors import ConfigError
from workbench.core.implementation import code_version, package_version
from workbench.core.redact import redact_url
from workbench.core.resources import resolve_source, source_version
from workbench.core.schema import LlamaCppEndpoint, ModelEndpoint, OpenAICompatEndpoint

log = logging.getLogger(__name__)

# Fields of an endpoint config that change how it is reached, not what it answers.
OPERATIONAL = frozenset({"cost", "fallbacks", "timeout_s", "retry", "breaker", "api_key_env", "n_threads"})

_PROVIDER_MODULES = {
    "llama_cpp": "workbench.models.llama_cpp",
    "openai_compat": "workbench.models.openai_compat",
    "extractive": "workbench.models.extractive",
}
_CHUNK = 1 << 20

_hash_lock = threading.Lock()
_hashes: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file, read in chunks and remembered per (path, size, mtime) for the life
    of the process. The ~100 MB SmolLM2 GGUF hashes in about 0.15 s, so there is no on-disk
    memo: it would save little and need a rule for when to trust it."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    key = (str(resolved), stat.st_size, stat.st_mtime_ns)
    with _hash_lock:
        if key in _hashes:
            return _hashes[key]
        started = time.perf_counter()
        digest = hashlib.sha256()
        with resolved.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
        _hashes[key] = digest.hexdigest()
        log.debug("sha256 of %s (%d bytes) in %.3fs", resolved, stat.st_size, time.perf_counter() - started)
        return _hashes[key]


def model_id(config: ModelEndpoint) -> str:
    """A short, credential-free name for the model behind an endpoint, for labels and messages."""
    if isinstance(config, LlamaCppEndpoint):
        src = config.source
        if src.path is not None:
            return Path(src.path).name
        assert src.package is not None
        return f"{src.package}=={package_version(src.package)}/{src.pattern}"
    if isinstance(config, OpenAICompatEndpoint):
        return f"{config.model}@{redact_url(config.base_url.rstrip('/'))}"
    return config.provider


def implementation(config: ModelEndpoint) -> dict[str, Any]:
    """What runs an endpoint's config: provider code, and the weights and library for local models."""
    out: dict[str, Any] = {"provider": config.provider, "code": code_version(_PROVIDER_MODULES[config.provider])}
    if isinstance(config, LlamaCppEndpoint):
        try:
            path = resolve_source(config.source)
        except ConfigError as exc:
            # Weights that are not there answer nothing: a fallback that cannot load must not
            # stop the primary's outputs from being keyed.
            out["missing"] = str(exc)
            return out
        if config.source.package is not None:  # a path's own identity is its sha256
            out["weights"] = source_version(config.source)
        out["file"] = path.name
        out["sha256"] = file_sha256(path)
        out["llama_cpp_python"] = package_version("llama-cpp-python")
    elif isinstance(config, OpenAICompatEndpoint):
        out["base_url"] = redact_url(config.base_url.rstrip("/"))
        out["model"] = config.model
    return out


def endpoint_identity(config: ModelEndpoint, *, override: object | None = None, answers_only: bool = False) -> dict:
    """An endpoint's config and implementation, as JSON-ready data for a cache key.

    `answers_only` drops the operational fields (`OPERATIONAL`): right for a key whose value
    is only the answer (a judgment); a stage output also records cost, so it keeps them.
    `override` is a model replacing the provider (a test fake): it is named instead.
    """
    dumped = config.model_dump(mode="json", exclude=set(OPERATIONAL) if answers_only else None)
    if "base_url" in dumped:
        dumped["base_url"] = redact_url(dumped["base_url"])
    if override is not None:
        cls = type(override)
        return {"config": dumped, "override": f"{cls.__module__}.{cls.__qualname__}"}
    return {"config": dumped, "implementation": implementation(config)}
