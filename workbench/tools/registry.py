"""The explicit map from a route's `tool` name to its tool class."""

from __future__ import annotations

from typing import Any

from workbench.core.registry import Registry
from workbench.tools.base import Tool, ToolContext

TOOLS: dict[str, str] = {
    "calculator": "workbench.tools.calculator:Calculator",
    "sql": "workbench.tools.sql:Sql",
    "clock": "workbench.tools.clock:Clock",
}


def tool_registry(extra: dict[str, str | type] | None = None) -> Registry:
    """A fresh registry of tools; pass user tool classes in `extra`."""
    return Registry("tool", {**TOOLS, **(extra or {})})


def build_tool(config: Any, context: ToolContext | None = None, registry: Registry | None = None) -> Tool:
    """Instantiate the tool for `config` (its `tool` field picks the class)."""
    cls = (registry or tool_registry()).resolve(config.tool)
    tool: Tool = cls(config, context)
    return tool
