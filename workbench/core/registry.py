"""Explicit name -> "module:Class" maps, resolved lazily.

Nothing registers itself on import: each layer declares its map, and a `Workbench` session
holds them. User classes are passed in explicitly with `add`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from workbench.core.errors import ConfigError


class Registry:
    def __init__(self, kind: str, entries: Mapping[str, str | type]) -> None:
        self.kind = kind
        self._entries: dict[str, str | type] = dict(entries)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def add(self, name: str, target: str | type) -> None:
        self._entries[name] = target

    def resolve(self, name: str) -> Any:
        try:
            target = self._entries[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}") from None
        if not isinstance(target, str):
            return target
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)
