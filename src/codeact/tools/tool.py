"""Tools: host-side Python callables the model's code can call.

A tool's signature and docstring are its contract with the model. They are read with
`inspect.signature` and `__doc__` only (never the source), so tools defined in a REPL or
`python -c` work too.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

from codeact.errors import ToolError
from codeact.models.base import ToolSpec
from codeact.tools._docstring import parse_docstring

__all__ = ["FunctionTool", "Tool", "tool", "to_tools"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
F = TypeVar("F", bound=Callable[..., Any])


class Tool:
    """Base class for tools that hold state (clients, credentials): subclass and define `forward`.

    The state lives on the host; the sandboxed code only sees a stub with `forward`'s
    signature and docstring.

        class Search(Tool):
            name = "search"
            def __init__(self, api_key: str): self.api_key = api_key
            def forward(self, query: str) -> list[str]:
                '''Search the web.

                Args:
                    query: What to look for.
                '''
    """

    name: str = ""
    description: str = ""

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    # -- derived from `forward`, checked once ------------------------------------------------
    @property
    def function(self) -> Callable[..., Any]:
        return self.forward

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        result = self.function(*args, **kwargs)
        if inspect.isawaitable(result):
            result = _run_awaitable(result)
        return result

    @property
    def signature(self) -> inspect.Signature:
        return _resolved_signature(self.function)

    @property
    def param_docs(self) -> dict[str, str]:
        return parse_docstring(self.function.__doc__)[1]

    @property
    def summary(self) -> str:
        return self.description or parse_docstring(self.function.__doc__)[0]

    def validate(self) -> Tool:
        """Raise ToolError unless the model can be told how to call this tool."""
        if not self.name or not _IDENTIFIER.match(self.name):
            raise ToolError(f"tool name {self.name!r} is not a Python identifier; set `name`")
        if not self.summary:
            raise ToolError(
                f"tool `{self.name}` has no description: add a docstring saying what it does"
            )
        for param in self.signature.parameters.values():
            if param.annotation is inspect.Parameter.empty:
                raise ToolError(
                    f"tool `{self.name}`: parameter `{param.name}` has no type hint; "
                    f"add one, e.g. `{param.name}: str`"
                )
        return self

    def python_signature(self) -> str:
        """`name(a: int, b: str = 'x') -> str`, for prompts and for the kernel's stubs."""
        return f"{self.name}{self.signature}"

    def docstring(self) -> str:
        """Summary plus an Args section, as the model will see it."""
        lines = [self.summary]
        docs = self.param_docs
        if docs:
            lines += ["", "Args:"] + [f"    {k}: {v}" for k, v in docs.items()]
        return "\n".join(lines)

    def json_schema(self) -> dict[str, Any]:
        """JSON schema of the arguments, for native tool-calling APIs."""
        from pydantic import TypeAdapter

        properties: dict[str, Any] = {}
        required: list[str] = []
        docs = self.param_docs
        for p in self.signature.parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            annotation = Any if p.annotation is p.empty else p.annotation
            try:
                schema = TypeAdapter(annotation).json_schema()
            except Exception:  # noqa: BLE001 - arbitrary classes have no schema; describe loosely
                schema = {}
            if p.name in docs:
                schema["description"] = docs[p.name]
            if p.default is p.empty:
                required.append(p.name)
            else:
                try:
                    TypeAdapter(type(p.default)).json_schema()
                    schema["default"] = p.default
                except Exception:  # noqa: BLE001
                    pass
            properties[p.name] = schema
        return {"type": "object", "properties": properties, "required": required}

    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.summary, self.json_schema())

    def __repr__(self) -> str:
        return f"<Tool {self.python_signature()}>"


class FunctionTool(Tool):
    """A tool made from a plain function by `@tool`."""

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None, description: str | None = None):
        self._fn = fn
        self.name = str(name or getattr(fn, "__name__", ""))
        self.description = description or ""
        self.__doc__ = fn.__doc__
        self.validate()

    @property
    def function(self) -> Callable[..., Any]:
        return self._fn


@overload
def tool(fn: F, /) -> FunctionTool: ...
@overload
def tool(*, name: str | None = None, description: str | None = None) -> Callable[[F], FunctionTool]: ...
def tool(
    fn: Callable[..., Any] | None = None, /, *, name: str | None = None, description: str | None = None
) -> Any:
    """Turn a typed, documented function into a Tool. Use as `@tool` or `@tool(name=...)`."""
    if fn is None:
        return lambda f: FunctionTool(f, name=name, description=description)
    return FunctionTool(fn, name=name, description=description)


def to_tools(items: Any) -> dict[str, Tool]:
    """Accept Tools, plain functions or a mapping; return {name: Tool}, names unique."""
    if isinstance(items, Mapping):
        items = list(items.values())
    tools: dict[str, Tool] = {}
    for item in items or ():
        t = item if isinstance(item, Tool) else FunctionTool(item)
        t.validate()
        if t.name in tools:
            raise ToolError(f"two tools are named `{t.name}`; tool names must be unique")
        tools[t.name] = t
    return tools


def _resolved_signature(fn: Callable[..., Any]) -> inspect.Signature:
    sig = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # noqa: BLE001 - unresolvable forward refs: keep them as written
        hints = {}
    params = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in sig.parameters.values()]
    return sig.replace(parameters=params, return_annotation=hints.get("return", sig.return_annotation))


def _run_awaitable(awaitable: Any) -> Any:
    async def wait() -> Any:
        return await awaitable

    return asyncio.run(wait())
