"""Tools the model's code can call; they run on the host, never inside the sandbox."""

from codeact.tools.calls import ToolCallRecord, ToolListener
from codeact.tools.tool import FunctionTool, Tool, to_tools, tool

__all__ = ["FunctionTool", "Tool", "ToolCallRecord", "ToolListener", "to_tools", "tool"]
