"""Resolving the strings users type (`module:function`, `a,b`) into objects, with clear errors."""

from __future__ import annotations

from codeact._loading import load_object
from codeact.errors import ConfigError
from codeact.tools.tool import FunctionTool, Tool

__all__ = ["load_object", "load_tool", "split_list"]


def split_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def load_tool(spec: str) -> Tool:
    obj = load_object(spec, "tool")
    if isinstance(obj, type) and issubclass(obj, Tool):
        obj = obj()
    if isinstance(obj, Tool):
        return obj.validate()
    if callable(obj):
        return FunctionTool(obj)
    raise ConfigError(f"tool {spec!r} is a {type(obj).__name__}, not a function or Tool")
