"""Resolving the strings users type (`module:function`, `a,b`) into objects, with clear errors."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from codeact.errors import ConfigError
from codeact.tools.tool import FunctionTool, Tool

__all__ = ["load_tool", "split_list"]


def split_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def load_object(spec: str, what: str) -> Any:
    """`package.module:name` or `path/to/file.py:name`."""
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{what} {spec!r} must look like module:name or path/to/file.py:name")
    if module_name.endswith(".py") or "/" in module_name:
        path = Path(module_name)
        if not path.is_file():
            raise ConfigError(f"{what} {spec!r}: file {path} does not exist")
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        if module_spec is None or module_spec.loader is None:
            raise ConfigError(f"{what} {spec!r}: cannot load {path}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules.setdefault(path.stem, module)
        module_spec.loader.exec_module(module)
    else:
        if str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(f"{what} {spec!r}: cannot import module {module_name!r} ({exc})") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        names = [n for n in dir(module) if not n.startswith("_")]
        raise ConfigError(f"{what} {spec!r}: module {module_name!r} has no {attr!r}; it has {names[:20]}") from None


def load_tool(spec: str) -> Tool:
    obj = load_object(spec, "tool")
    if isinstance(obj, type) and issubclass(obj, Tool):
        obj = obj()
    if isinstance(obj, Tool):
        return obj.validate()
    if callable(obj):
        return FunctionTool(obj)
    raise ConfigError(f"tool {spec!r} is a {type(obj).__name__}, not a function or Tool")
