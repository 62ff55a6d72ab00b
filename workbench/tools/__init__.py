"""Tools layer: typed Python callables a route dispatches to, with a JSON-schema argument model.

Tools are chosen by a route's `tool` name through an explicit registry (`TOOLS`).
"""

from workbench.tools.base import Tool, ToolArgs, ToolContext, ToolResult
from workbench.tools.registry import TOOLS, build_tool, tool_registry
from workbench.tools.stage import ToolStage, tool_prompt

__all__ = [
    "TOOLS",
    "Tool",
    "ToolArgs",
    "ToolContext",
    "ToolResult",
    "ToolStage",
    "build_tool",
    "tool_prompt",
    "tool_registry",
]
