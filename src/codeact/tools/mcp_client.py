"""One MCP server connection, owned by its own thread and event loop.

The agent, the dispatcher and the bridge are synchronous; the `mcp` SDK is async and its
sessions live inside task groups. So each connection gets one owner thread running one
asyncio loop, and one owner task that opens the transport and the session, lists the tools
and then waits; calls from any thread are submitted to that loop and waited for with a time
limit. When the server dies (a stdio process exits, an HTTP server goes away) the owner task
ends, the call that noticed says so plainly, and the next call opens a fresh connection (for
stdio: a fresh server process).

Stdio servers get an explicit environment: the SDK's minimal default (PATH, HOME, USER...)
plus what the caller passes in `env`, never the host's whole environment. Their stderr goes to
a temporary file, whose tail is quoted when the server dies.
"""

from __future__ import annotations

import asyncio
import collections
import shlex
import tempfile
import threading
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

from codeact._children import guarded_command
from codeact._optional import require
from codeact.errors import ConfigError, MCPToolError

__all__ = ["HTTPServer", "MCPConnection", "StdioServer", "server_from_spec", "server_from_text"]

_START_TIMEOUT = 30.0
_STDERR_TAIL = 800
ProgressCallback = Callable[[str, float, "float | None", "str | None"], None]


@dataclass(frozen=True)
class StdioServer:
    """An MCP server started as a child process speaking over stdin/stdout.

    Args:
        command: the executable.
        args: its arguments.
        env: its environment on top of a minimal default (PATH, HOME, USER...): the host's
            environment is not passed on. Values here are treated as secrets.
        cwd: its working directory.
        name: how messages and tool prefixes name it (default: the command's base name).
        prefix: put before each of its tool names (`"gh_"`), to keep names from servers apart.
        timeout: seconds one tool call may take.
    """

    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    name: str = ""
    prefix: str = ""
    timeout: float = 60.0

    @property
    def label(self) -> str:
        return self.name or " ".join([self.command.rsplit("/", 1)[-1], *self.args])[:80]

    @property
    def secrets(self) -> dict[str, str]:
        return {f"env.{k}": v for k, v in self.env.items() if v}

    def spec(self) -> dict[str, Any]:
        """This server as plain data for a run's meta: the env's names, never its values."""
        return {"kind": "stdio", "command": self.command, "args": list(self.args), "env": sorted(self.env),
                "cwd": self.cwd, "name": self.name, "prefix": self.prefix, "timeout": self.timeout}


@dataclass(frozen=True)
class HTTPServer:
    """An MCP server reached over streamable HTTP.

    Args:
        url: the endpoint, e.g. `http://127.0.0.1:8000/mcp`.
        headers: sent with every request (e.g. `Authorization`); treated as secrets.
        name, prefix, timeout: as for `StdioServer`.
    """

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    name: str = ""
    prefix: str = ""
    timeout: float = 60.0

    @property
    def label(self) -> str:
        return self.name or self.url

    @property
    def secrets(self) -> dict[str, str]:
        return {f"header.{k}": v for k, v in self.headers.items() if v}

    def spec(self) -> dict[str, Any]:
        """This server as plain data for a run's meta: the headers' names, never their values
        (nor a password in the URL)."""
        parts = urlsplit(self.url)
        url = self.url
        if parts.password is not None:
            host = parts.netloc.rpartition("@")[2]
            url = urlunsplit(parts._replace(netloc=f"{parts.username}:REDACTED@{host}"))
        return {"kind": "http", "url": url, "headers": sorted(self.headers), "name": self.name,
                "prefix": self.prefix, "timeout": self.timeout}


def server_from_spec(spec: Mapping[str, Any], *, environ: Mapping[str, str] | None = None,
                     headers: Mapping[str, str] | None = None) -> StdioServer | HTTPServer:
    """The server a `spec()` describes, to open it again (`codeact resume` of a run made with `--mcp`).

    Args:
        environ: where a stdio server's env values come from, by name (default: this process's
            environment); a name it lacks is a ConfigError, since values are never stored.
        headers: an HTTP server's header values, by name; a missing one is a ConfigError.
    """
    import os

    try:
        kind = spec["kind"]
        name, prefix, timeout = str(spec.get("name") or ""), str(spec.get("prefix") or ""), float(spec["timeout"])
        if kind == "http":
            wanted = [str(h) for h in spec.get("headers") or []]
            given = dict(headers or {})
            missing = [h for h in wanted if h not in given]
            if missing:
                raise ConfigError(f"MCP server `{name or spec['url']}` was used with the headers "
                                  f"{', '.join(missing)}, whose values are not stored with the run; open it "
                                  "again from Python with HTTPServer(url, headers={...})")
            return HTTPServer(str(spec["url"]), {h: given[h] for h in wanted}, name=name, prefix=prefix,
                              timeout=timeout)
        if kind != "stdio":
            raise ConfigError(f"unknown MCP server kind {kind!r}")
        source = os.environ if environ is None else environ
        names = [str(n) for n in spec.get("env") or []]
        missing = [n for n in names if n not in source]
        label = name or str(spec["command"])
        if missing:
            raise ConfigError(f"MCP server `{label}` was started with the environment variables "
                              f"{', '.join(missing)}, whose values are not stored with the run; set them "
                              "in the environment and resume again")
        return StdioServer(str(spec["command"]), tuple(str(a) for a in spec.get("args") or ()),
                           {n: source[n] for n in names}, cwd=spec.get("cwd"), name=name, prefix=prefix,
                           timeout=timeout)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"the run's MCP server record {dict(spec)!r:.300} is unreadable ({exc!r})") from None


def server_from_text(text: str) -> StdioServer | HTTPServer:
    """`"http://host/mcp"` → HTTPServer; `"npx -y some-server"` → StdioServer (split like a shell)."""
    text = text.strip()
    if text.startswith(("http://", "https://")):
        return HTTPServer(text)
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ConfigError(f"cannot read the MCP server command {text!r}: {exc}") from exc
    if not words:
        raise ConfigError("an MCP server is a URL (http://...) or a command line; got nothing")
    return StdioServer(words[0], tuple(words[1:]))


class MCPConnection:
    """A live connection to one MCP server, usable from any thread.

    Args:
        on_progress: called (tool, progress, total, message) for each progress notification,
            on the connection's thread; it must be quick and must not raise.
    """

    def __init__(self, server: StdioServer | HTTPServer, *, on_progress: ProgressCallback | None = None) -> None:
        require("mcp", extra="mcp", feature="MCP servers as tools")
        self.server = server
        self.on_progress = on_progress
        self.progress: collections.deque[tuple[str, float, float | None, str | None]] = collections.deque(maxlen=100)
        self.tools: list[Any] = []  # mcp.types.Tool, as listed when the connection opened
        self.instructions = ""  # the server's own summary, from its initialize result
        self.restarts = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: Any = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stderr: IO[str] | None = None
        self._closed = False

    # -- lifetime ------------------------------------------------------------------------------
    def open(self) -> MCPConnection:
        """Connect, initialize and list the tools; raise MCPToolError when the server cannot be reached."""
        with self._lock:
            self._start()
        return self

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._shutdown()

    @property
    def alive(self) -> bool:
        return self._session is not None and self._thread is not None and self._thread.is_alive()

    def _start(self) -> None:
        self._ready = threading.Event()
        self._error = None
        self._thread = threading.Thread(target=self._own, name=f"codeact-mcp-{self.server.label}"[:60], daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT):
            self._shutdown()
            raise MCPToolError(f"MCP server `{self.server.label}` did not answer within {_START_TIMEOUT:.0f} s")
        if self._session is None:
            error = self._error
            self._shutdown()
            raise MCPToolError(f"cannot connect to MCP server `{self.server.label}`: {_describe(error)}{self._tail()}")

    def _shutdown(self) -> None:
        loop, stop, thread = self._loop, self._stop, self._thread
        if loop is not None and stop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # the loop already ended
                pass
        if thread is not None and thread is not threading.current_thread():
            thread.join(10)
        self._session = None
        self._thread = None

    def _own(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # noqa: BLE001 - kept for the message of the next call
            self._error = exc
        finally:
            self._session = None
            self._ready.set()
            loop.close()

    async def _main(self) -> None:
        from mcp import ClientSession

        self._stop = asyncio.Event()
        async with AsyncExitStack() as stack:
            read, write = await stack.enter_async_context(self._transport(stack))
            session = await stack.enter_async_context(ClientSession(read, write))
            initialized = await session.initialize()
            self.instructions = " ".join(str(initialized.instructions or "").split())[:300]
            tools: list[Any] = []
            cursor = None
            for _ in range(100):  # pages; a server that pages forever is cut off
                listed = await session.list_tools(params=_page(cursor))
                tools.extend(listed.tools)
                cursor = listed.next_cursor
                if not cursor:
                    break
            self.tools = tools
            self._session = session
            self._ready.set()
            await self._stop.wait()

    def _transport(self, stack: AsyncExitStack) -> Any:
        server = self.server
        if isinstance(server, HTTPServer):
            from mcp.client.streamable_http import streamable_http_client
            from mcp.shared._httpx_utils import create_mcp_http_client

            client = create_mcp_http_client(headers=dict(server.headers))
            return streamable_http_client(server.url, http_client=client)
        from mcp import StdioServerParameters, stdio_client

        if self._stderr is not None:
            self._stderr.close()
        self._stderr = stack.enter_context(tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace"))
        # Through the parent-death shim: the server is killed when this connection's owner thread
        # (which forks it) ends, also when codeact dies without closing it.
        command = guarded_command([server.command, *server.args])
        params = StdioServerParameters(command=command[0], args=command[1:], env=dict(server.env), cwd=server.cwd)
        return stdio_client(params, errlog=self._stderr)

    def _tail(self) -> str:
        stderr = self._stderr
        if stderr is None or stderr.closed:
            return ""
        try:
            stderr.flush()
            size = stderr.seek(0, 2)
            stderr.seek(max(0, size - _STDERR_TAIL))
            text = stderr.read().strip()
        except (OSError, ValueError):
            return ""
        return f"\nits last stderr lines:\n{text}" if text else ""

    # -- calls ---------------------------------------------------------------------------------
    def call(self, tool: str, arguments: dict[str, Any], *, timeout: float | None = None) -> Any:
        """Call `tool` and return the SDK's CallToolResult; raise MCPToolError when it cannot."""
        timeout = self.server.timeout if timeout is None else timeout
        with self._lock:
            if self._closed:
                raise MCPToolError(f"the connection to MCP server `{self.server.label}` was closed")
            if not self.alive:
                self._shutdown()
                self.restarts += 1
                self._start()  # a dead server is started again (stdio) or reconnected (HTTP)
            loop, session = self._loop, self._session
        assert loop is not None

        async def progress(value: float, total: float | None, message: str | None) -> None:
            self.progress.append((tool, value, total, message))
            if self.on_progress is not None:
                self.on_progress(tool, value, total, message)

        future = asyncio.run_coroutine_threadsafe(
            session.call_tool(tool, arguments, read_timeout_seconds=timeout, progress_callback=progress), loop
        )
        try:
            return future.result(timeout + 5.0)
        except TimeoutError as exc:
            future.cancel()
            raise MCPToolError(f"`{tool}` on MCP server `{self.server.label}` did not answer within {timeout:.3g} s") from exc
        except Exception as exc:
            raise self._failure(tool, exc, timeout) from exc

    def _failure(self, tool: str, exc: BaseException, timeout: float) -> MCPToolError:
        from mcp import types
        from mcp.shared.exceptions import MCPError

        where = f"`{tool}` on MCP server `{self.server.label}`"
        if isinstance(exc, MCPError) and exc.code == types.REQUEST_TIMEOUT:
            return MCPToolError(f"{where} did not answer within {timeout:.3g} s")
        if isinstance(exc, MCPError) and exc.code != types.CONNECTION_CLOSED:
            return MCPToolError(f"{where} failed: {exc.message[:2000]}")
        tail = self._tail()
        with self._lock:
            self._shutdown()
        again = "started again" if isinstance(self.server, StdioServer) else "reconnected"
        return MCPToolError(
            f"{where} failed: the server stopped ({_describe(exc)}); it will be {again} on the next call{tail}"
        )


def _page(cursor: str | None) -> Any:
    if cursor is None:
        return None
    from mcp import types

    return types.PaginatedRequestParams(cursor=cursor)


def _describe(error: BaseException | None) -> str:
    """The innermost message of an error (the SDK wraps failures in exception groups)."""
    while isinstance(getattr(error, "exceptions", None), tuple) and error.exceptions:  # type: ignore[union-attr]
        error = error.exceptions[0]  # type: ignore[union-attr]
    if error is None:
        return "no reason given"
    text = str(error) or type(error).__name__
    return text[:500]
