"""Import optional heavy dependencies on first use, naming the extra when one is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from workbench.core.errors import MissingDependency


def require(module: str, package: str, extra: str = "retrieval") -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(package, extra) from exc
