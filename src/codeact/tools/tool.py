"""Tools: host-side Python callables the model's code can call.

A tool's signature and docstring are its contract with the model. They are read with
`inspect.signature` and `__doc__`, so tools defined in a REPL or `python -c` work too.

Parameter defaults are shown (in the prompt, the JSON schema and the sandbox's stubs) only as
the literals written in the source: a default computed at definition time
(`api_key: str = os.environ["KEY"]`) holds a value, maybe a secret, that the model never needs,
so it is shown as `...`, and so is any default of a parameter named like a credential or whose
text looks like one. Without the source, only small scalar defaults that do not look secret
are shown.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
import textwrap
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

from codeact.errors import ToolError
from codeact.models.base import ToolSpec
from codeact.tools._docstring import parse_docstring
from codeact.tools._secrets import looks_secret, secret_name

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
    needs_approval: bool = False
    """Each call waits for an approver's decision first (see `codeact.tools.approval`)."""
    concurrent: bool = False
    """Calls may overlap the step's other calls (the bridge runs each on its own host thread), so
    threads in the model's code can wait on several at once; for slow tools such as sub-agents."""
    at_start: bool = False
    """Called once, with no arguments, when a run starts: what it returns goes into the task message
    (see `agent.start_calls`), so the model sees what there is (tables, files, accounts) before its
    first step. For cheap, read-only listings; a tool marked so must be callable without arguments."""

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def approval_needed(self, arguments: Mapping[str, Any]) -> bool:
        """Whether this call must be approved before it runs (a stand-in serving a recorded
        result overrides it: nothing runs, so nothing needs approving)."""
        return bool(self.needs_approval)

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
        if self.at_start:
            self._check_at_start()
        return self

    def _check_at_start(self) -> None:
        required = [p.name for p in self.signature.parameters.values()
                    if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if required:
            raise ToolError(f"tool `{self.name}` is marked at_start, so it is called with no arguments, but "
                            f"`{required[0]}` has no default")
        if self.needs_approval:
            raise ToolError(f"tool `{self.name}` is marked both at_start and needs_approval: a call made "
                            "before the run starts cannot wait for an approver")

    def python_signature(self) -> str:
        """`name(a: int, b: str = 'x') -> str`, for prompts and for the kernel's stubs."""
        shown = self.shown_defaults()
        signature = self.signature
        params = [
            p.replace(default=_Shown(shown[p.name])) if p.name in shown else p for p in signature.parameters.values()
        ]
        return f"{self.name}{signature.replace(parameters=params)}"

    def shown_defaults(self) -> dict[str, str]:
        """{parameter: its default as the model may see it}: a literal from the source, or `...`."""
        cached: dict[str, str] | None = self.__dict__.get("_shown_defaults")
        if cached is None:
            cached = self.__dict__["_shown_defaults"] = _shown_defaults(self.function, self.signature)
        return cached

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
            elif self.shown_defaults().get(p.name, "...") != "...":
                schema["default"] = ast.literal_eval(self.shown_defaults()[p.name])
            properties[p.name] = schema
        return {"type": "object", "properties": properties, "required": required}

    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.summary, self.json_schema())

    def __repr__(self) -> str:
        return f"<Tool {self.python_signature()}>"


class FunctionTool(Tool):
    """A tool made from a plain function by `@tool`."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        needs_approval: bool = False,
        at_start: bool = False,
    ):
        self._fn = fn
        self.name = str(name or getattr(fn, "__name__", ""))
        self.description = description or ""
        self.needs_approval = needs_approval
        self.at_start = at_start
        self.__doc__ = fn.__doc__
        self.validate()

    @property
    def function(self) -> Callable[..., Any]:
        return self._fn


@overload
def tool(fn: F, /) -> FunctionTool: ...
@overload
def tool(
    *, name: str | None = None, description: str | None = None, needs_approval: bool = False,
    at_start: bool = False,
) -> Callable[[F], FunctionTool]: ...
def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    needs_approval: bool = False,
    at_start: bool = False,
) -> Any:
    """Turn a typed, documented function into a Tool. Use as `@tool` or `@tool(name=...)`.

    `needs_approval=True`: every call waits for the agent's approver (see `codeact.tools.approval`).
    `at_start=True`: called with no arguments when a run starts, its result shown in the task
    message (a catalogue or schema the model should see first; see `agent.start_calls`).
    """
    if fn is None:
        return lambda f: FunctionTool(f, name=name, description=description, needs_approval=needs_approval,
                                      at_start=at_start)
    return FunctionTool(fn, name=name, description=description, needs_approval=needs_approval, at_start=at_start)


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


class _Shown:
    """A default as shown: its repr is the text."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


_HIDDEN = "..."
_SCALARS = (type(None), bool, int, float, str)


def _shown_defaults(fn: Callable[..., Any], signature: inspect.Signature) -> dict[str, str]:
    written = _source_defaults(fn)
    shown: dict[str, str] = {}
    for p in signature.parameters.values():
        if p.default is p.empty:
            continue
        text = _HIDDEN
        if written is not None:
            node = written.get(p.name)
            if node is not None:
                text = _literal_text(node, p.default)
        elif type(p.default) in _SCALARS and len(repr(p.default)) <= 100:
            text = repr(p.default)
        if secret_name(p.name) or looks_secret(text):
            text = _HIDDEN
        shown[p.name] = text
    return shown


def _literal_text(node: ast.expr, default: Any) -> str:
    """The default as written, if it is a literal equal to the real default; else `...`."""
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _HIDDEN
    if type(value) is not type(default) or value != default:
        return _HIDDEN  # the source is not this function's own (a wrapper), or it was changed
    text = ast.unparse(node)
    return text if len(text) <= 200 else _HIDDEN


def _source_defaults(fn: Callable[..., Any]) -> dict[str, ast.expr] | None:
    """{parameter: its default's expression} from `fn`'s source, or None without a source."""
    try:
        source = textwrap.dedent(inspect.getsource(fn))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, ValueError, IndentationError):
        return None
    name = getattr(fn, "__name__", None)
    node = next(
        (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name),
        None,
    )
    if node is None:
        return None
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    defaults: dict[str, ast.expr] = {}
    for arg, default in zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True):
        defaults[arg.arg] = default
    for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        if kw_default is not None:
            defaults[arg.arg] = kw_default
    return defaults


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
