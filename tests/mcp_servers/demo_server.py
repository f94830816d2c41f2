"""A small MCP server written with the `mcp` SDK, for the MCP tests: stdio or streamable HTTP.

    python -m tests.mcp_servers.demo_server            # stdio
    python -m tests.mcp_servers.demo_server http PORT  # streamable HTTP on 127.0.0.1:PORT/mcp
"""

from __future__ import annotations

import os
import sys
from typing import Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from typing_extensions import TypedDict

server = MCPServer("demo")


class Address(TypedDict):
    city: str
    zip: str


@server.tool()
def add(a: int, b: int = 2) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def greet(name: str, tone: Literal["warm", "cold"] = "warm") -> str:
    """Greet someone."""
    return f"{'Hello' if tone == 'warm' else 'Hi'}, {name}"


@server.tool()
def where(address: Address) -> dict[str, str]:
    """Describe an address."""
    return {"where": f"{address['city']} ({address['zip']})"}


@server.tool()
def fail(reason: str) -> str:
    """Always fails with the reason."""
    raise ToolError(f"failed because {reason}")


@server.tool()
def env_value(name: str) -> str:
    """An environment variable of the server process ('' when unset)."""
    return os.environ.get(name, "")


@server.tool()
async def slow(steps: int, ctx: Context) -> str:
    """Report progress `steps` times, then return."""
    import anyio

    for i in range(steps):
        await ctx.report_progress(i + 1, steps, f"step {i + 1}")
        await anyio.sleep(0.05)
    return f"done {steps}"


@server.tool()
def sleep_for(seconds: float) -> str:
    """Sleep (blocking the server) then return."""
    import time

    time.sleep(seconds)
    return "slept"


@server.tool()
def die() -> str:
    """Exit the server process at once."""
    os._exit(3)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
