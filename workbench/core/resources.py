"""Find local model weights: a path, or a file shipped inside an installed Python package."""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
from collections.abc import Mapping
from pathlib import Path

from workbench.core.errors import ConfigError
from workbench.core.implementation import package_version
from workbench.core.schema import ModelSource


def _package_dir(package: str) -> Path:
    # find_spec locates the package without executing its __init__, which for some weight
    # packages imports a plugin host we do not want to depend on.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"model package {package!r} is not installed (pip install {package.replace('_', '-')})")
    return Path(next(iter(spec.submodule_search_locations)))


@functools.cache
def _distributions() -> Mapping[str, list[str]]:
    """Top-level module -> distributions. Scanning every installed package takes ~0.2 s, and
    cache keys ask for it on every request: once per process is enough (installs need a restart)."""
    return importlib.metadata.packages_distributions()


def source_version(source: ModelSource) -> str:
    """What identifies the weights without hashing them: the shipping distribution's version,
    or a local path's size and modification time."""
    if source.package is not None:
        dists = _distributions().get(source.package, [source.package])
        return ",".join(f"{d}=={package_version(d)}" for d in sorted(set(dists)))
    path = Path(source.path or "").expanduser()
    if not path.exists():
        return "missing"
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return ";".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)


def resolve_source(source: ModelSource) -> Path:
    """The file or folder a `ModelSource` points at, or a `ConfigError` saying why not."""
    if source.path is not None:
        path = Path(source.path).expanduser()
        if not path.exists():
            raise ConfigError(f"model path {path} does not exist")
        return path
    assert source.package is not None
    matches = sorted(_package_dir(source.package).glob(source.pattern))
    if not matches:
        raise ConfigError(f"no file matching {source.pattern!r} in package {source.package!r}")
    return matches[0]
