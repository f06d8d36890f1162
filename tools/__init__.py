"""Tools the agent may call: typed Python functions with docstrings, registered through one pluggy hook.

A plugin needs only ``from tools import hookimpl, ToolContext``.
"""

from tools.base import Tool, ToolContext, ToolDefinitionError, ToolResult
from tools.hookspecs import hookimpl

__all__ = ["Tool", "ToolContext", "ToolDefinitionError", "ToolResult", "hookimpl"]
