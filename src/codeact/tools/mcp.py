"""MCP servers as host tools: each tool of an MCP server becomes a codeact `Tool`.

    with MCPClient("npx -y some-server", HTTPServer(url, headers={...})) as mcp:
        CodeAgent(model, tools=[*mcp.tools, other_tool]).run(task)

The tools run on the host (the connection and its credentials never enter the sandbox); the
sandboxed code sees plain stubs whose signatures come from each tool's `inputSchema` (required
parameters, defaults, enums as `Literal`, nested objects as `TypedDict`s defined in the
docstring) and whose return type comes from `outputSchema`. Calls go through the same
dispatcher, policies, log and redaction as any tool: each tool lists the server's `env` and
header values in `secrets`, so the run log's redactor removes them.

A call returns `structuredContent` as Python values (a `{"result": x}` wrapper, which SDK
servers put around non-object results, is taken off), text content as `str`, image content as
`codeact.models.images.Image` (checked like any untrusted image; one that fails the check is a
text note), and other content (audio, resources) as dicts with their fields; a result with
`isError` raises `MCPToolError`, which the sandboxed code can catch. The images a call returns
go to the model with the step's observation (a note for a model that does not read images);
inside the sandbox the code sees each as a record of its type, size and MIME type.
"""

from __future__ import annotations

import atexit
import base64
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from codeact.errors import ConfigError, MCPToolError
from codeact.models.images import Image, ImageLimits, check_image
from codeact.tools.catalogue import CODE_MODE_THRESHOLD, code_mode
from codeact.tools.mcp_client import (
    HTTPServer,
    MCPConnection,
    ProgressCallback,
    StdioServer,
    server_from_spec,
    server_from_text,
)
from codeact.tools.mcp_schema import SchemaTypes, python_name
from codeact.tools.signature import TextValue
from codeact.tools.tool import Tool

__all__ = ["HTTPServer", "MCPClient", "MCPTool", "MCPToolError", "StdioServer", "mcp_tools", "reopen_servers",
           "server_specs"]

_MAX_DESCRIPTION = 2000
_MAX_RESULT_TEXT = 1_000_000
#: What an MCP image may be (the limits of an image a step shows; see `sandbox.guest.display`).
_IMAGE_LIMITS = ImageLimits(max_bytes=2 * 1024 * 1024, max_pixels=4096 * 4096)
_MAX_IMAGE_BASE64 = (_IMAGE_LIMITS.max_bytes + 2) * 4 // 3 + 4
ServerLike = str | StdioServer | HTTPServer


class MCPTool(Tool):
    """One tool of an MCP server, called over its connection."""

    def __init__(self, connection: MCPConnection, info: Any, *, name: str) -> None:
        self.connection = connection
        self.remote_name: str = info.name
        self.name = name
        self.input_schema: dict[str, Any] = dict(info.input_schema or {})
        self.output_schema: dict[str, Any] | None = info.output_schema
        text = (info.description or info.title or "").strip()
        self.description = (text.splitlines()[0] if text else f"The `{info.name}` tool of an MCP server.")[:300]
        self._long_description = text[:_MAX_DESCRIPTION]
        self.secrets: dict[str, str] = connection.server.secrets
        self._names: dict[str, str] = {}  # Python parameter name -> schema property name
        self._build()
        self.validate()

    def _build(self) -> None:
        types = SchemaTypes(self.input_schema)
        properties = self.input_schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        required_list = self.input_schema.get("required")
        required = set(required_list) if isinstance(required_list, list) else set()
        taken: set[str] = set()
        first: list[inspect.Parameter] = []
        rest: list[inspect.Parameter] = []
        self._param_docs: dict[str, str] = {}
        self._defaults: dict[str, str] = {}
        for key, schema in list(properties.items())[:100]:
            pname = python_name(str(key), taken)
            self._names[pname] = str(key)
            annotation = TextValue(types.type_text(schema))
            if isinstance(schema, Mapping) and isinstance(schema.get("description"), str):
                self._param_docs[pname] = " ".join(schema["description"].split())[:300]
            if key in required:
                first.append(inspect.Parameter(pname, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=annotation))
                continue
            default = schema.get("default") if isinstance(schema, Mapping) else None
            shown = repr(default) if isinstance(default, (str, int, float, bool, type(None))) else "..."
            self._defaults[pname] = shown if len(shown) <= 100 else "..."
            rest.append(
                inspect.Parameter(pname, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=annotation)
            )
        out = SchemaTypes(self.output_schema or {})
        returns = "Any"
        if self.output_schema:
            returns = out.type_text(self._unwrapped_schema(self.output_schema))
        self._signature = inspect.Signature([*first, *rest], return_annotation=TextValue(returns))
        self._definitions = "\n".join(d for d in (types.definitions(), out.definitions()) if d)

    @staticmethod
    def _unwrapped_schema(schema: Mapping[str, Any]) -> Any:
        properties = schema.get("properties")
        if isinstance(properties, Mapping) and list(properties) == ["result"]:
            return properties["result"]
        return schema

    # -- the Tool contract, from the schemas -------------------------------------------------------
    @property
    def function(self) -> Callable[..., Any]:
        return self.forward

    @property
    def signature(self) -> inspect.Signature:
        return self._signature

    @property
    def param_docs(self) -> dict[str, str]:
        return dict(self._param_docs)

    def shown_defaults(self) -> dict[str, str]:
        return dict(self._defaults)

    def docstring(self) -> str:
        text = super().docstring()
        rest = self._long_description.partition("\n")[2].strip()
        if rest:
            text = f"{self.summary}\n\n{rest}" + text[len(self.summary) :]
        if self._definitions:
            text += "\n\nTypes:\n    " + self._definitions.replace("\n", "\n    ")
        return text

    def json_schema(self) -> dict[str, Any]:
        return self.input_schema or {"type": "object", "properties": {}}

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        bound = self._signature.bind(*args, **kwargs)  # only what the code passed: the server applies defaults
        arguments = {self._names[k]: v for k, v in bound.arguments.items()}
        result = self.connection.call(self.remote_name, arguments)
        return _value(result, self.remote_name, unwrap=self._unwrapped_schema(self.output_schema or {}) is not self.output_schema)


def _value(result: Any, tool: str, *, unwrap: bool) -> Any:
    """A CallToolResult as Python values; `isError` raises MCPToolError."""
    if getattr(result, "is_error", False):
        text = " ".join(getattr(b, "text", "") for b in result.content if getattr(b, "type", "") == "text")
        raise MCPToolError(text[:2000] or f"the MCP tool `{tool}` reported an error")
    structured = getattr(result, "structured_content", None)
    if structured is not None:
        if unwrap and isinstance(structured, dict) and list(structured) == ["result"]:
            return structured["result"]
        return structured
    parts: list[Any] = []
    for block in result.content:
        if getattr(block, "type", "") == "text":
            parts.append(block.text[:_MAX_RESULT_TEXT])
        elif getattr(block, "type", "") == "image":
            parts.append(_image(block, tool))
        else:
            parts.append(block.model_dump(mode="json", by_alias=True, exclude_none=True))
    if all(isinstance(p, str) for p in parts):
        return "\n".join(parts)
    return parts[0] if len(parts) == 1 else parts


def _image(block: Any, tool: str) -> Image | str:
    """An image content block as an Image, or a note saying why it is not one (never its base64)."""
    encoded = getattr(block, "data", None)
    if not isinstance(encoded, str) or len(encoded) > _MAX_IMAGE_BASE64:
        checked: Image | str = "malformed, or over the size limit"
    else:
        try:
            checked = check_image(base64.b64decode(encoded), _IMAGE_LIMITS, source=f"tool:{tool}")
        except ValueError:
            checked = "its data is not base64"
    return checked if isinstance(checked, Image) else f"[an image from {tool} not shown: {checked}]"


class MCPClient:
    """Owns the connections to some MCP servers and offers their tools; a context manager.

    Past `CODE_MODE_THRESHOLD` tools (or with `code_mode=True`), the tools leave the prompt and
    `tools` ends with `search_tools` and `help`, whose docstring outlines the servers (code mode,
    see `codeact.tools.catalogue`).

    Args:
        servers: command lines (`"npx -y some-server"`), URLs, `StdioServer`s or `HTTPServer`s.
        on_progress: called (tool, progress, total, message) for each progress notification.
        code_mode: True or False to force it; None decides by the number of tools.
    """

    def __init__(
        self, *servers: ServerLike, on_progress: ProgressCallback | None = None, code_mode: bool | None = None
    ) -> None:
        self.servers = [server_from_text(s) if isinstance(s, str) else s for s in servers]
        self.connections: list[MCPConnection] = []
        self.tools: list[Tool] = []
        self.on_progress = on_progress
        self.code_mode = code_mode

    def open(self) -> MCPClient:
        try:
            taken: set[str] = set()
            for server in self.servers:
                connection = MCPConnection(server, on_progress=self.on_progress).open()
                self.connections.append(connection)
                for info in connection.tools:
                    name = python_name(server.prefix + info.name, taken)
                    self.tools.append(MCPTool(connection, info, name=name))
        except BaseException:
            self.close()
            raise
        if self.code_mode is not False:
            threshold = 0 if self.code_mode else CODE_MODE_THRESHOLD
            self.tools = code_mode(self.tools, outline=self.outline(), threshold=threshold)
        return self

    def outline(self) -> dict[str, str]:
        """{server: a one-line summary}: its own instructions, or some of its tool names."""
        outline = {}
        for connection in self.connections:
            names = [t.name for t in self.tools if isinstance(t, MCPTool) and t.connection is connection]
            shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
            summary = f"{len(names)} tools ({shown})"
            outline[connection.server.label] = f"{connection.instructions} {summary}".strip()
        return outline

    def close(self) -> None:
        for connection in self.connections:
            connection.close()

    def __enter__(self) -> MCPClient:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


_OPEN: list[MCPClient] = []


def mcp_tools(
    *servers: ServerLike, on_progress: ProgressCallback | None = None, code_mode: bool | None = None
) -> list[Tool]:
    """The tools of these MCP servers, connected now and closed when the interpreter exits.

    Use `MCPClient` as a context manager to close the connections (and stop stdio servers)
    earlier.
    """
    client = MCPClient(*servers, on_progress=on_progress, code_mode=code_mode).open()
    if not _OPEN:
        atexit.register(_close_all)
    _OPEN.append(client)
    return list(client.tools)


def _close_all() -> None:
    while _OPEN:
        _OPEN.pop().close()


def server_specs(*servers: ServerLike) -> list[dict[str, Any]]:
    """The servers as plain data for a run's meta, without secret values: what `reopen_servers` takes."""
    return [(server_from_text(s) if isinstance(s, str) else s).spec() for s in servers]


def reopen_servers(specs: Sequence[Mapping[str, Any]], *, run_id: str = "") -> list[Tool]:
    """The tools of the servers a run recorded (`server_specs`), connected again: for a resume.

    Env values come from this process's environment by name (they are never stored). A server
    that cannot be started or reached is a ConfigError that names it.
    """
    servers = [server_from_spec(spec) for spec in specs]
    try:
        return mcp_tools(*servers)
    except MCPToolError as exc:
        of = f"run {run_id}" if run_id else "the run"
        raise ConfigError(f"{of} used MCP tools, but the server cannot be started again: {exc}") from None
