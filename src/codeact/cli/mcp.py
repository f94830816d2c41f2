"""`codeact mcp serve`: codeact as an MCP server (stdio, or streamable HTTP on 127.0.0.1).

Over stdio, stdout is the protocol: nothing else may be printed there, so messages go to stderr.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from codeact.cli import app
from codeact.cli._options import StoreOption, positive, sandbox_name, usage_errors

__all__ = ["mcp_app", "serve"]

mcp_app = typer.Typer(name="mcp", help="Model Context Protocol: serve codeact to MCP hosts.", no_args_is_help=True,
                      rich_markup_mode=None)
app.add_typer(mcp_app)


@mcp_app.command()
def serve(
    transport: Annotated[str, typer.Option(help="stdio, or http (streamable HTTP).")] = "stdio",
    host: Annotated[str, typer.Option(help="Address to listen on (http).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on (http).")] = 8000,
    model: Annotated[str, typer.Option("--model", "-m", help="Model run_task uses by default.")] = "local",
    sandbox: Annotated[str, typer.Option(callback=sandbox_name, help="default (= local, isolated), local, "
                                         "or process (no isolation).")] = "default",
    max_steps: Annotated[int, typer.Option(min=1, max=100, help="run_task's default step budget.")] = 10,
    timeout: Annotated[float, typer.Option(callback=positive, help="Seconds one code step may run.")] = 30.0,
    store: StoreOption = None,
) -> None:
    """Serve run_task, python (a persistent isolated session per client), list_runs and get_run over MCP."""
    err = Console(stderr=True)
    with usage_errors(err):
        if transport not in ("stdio", "http"):
            from codeact.errors import ConfigError

            raise ConfigError(f"--transport is stdio or http, not {transport!r}")
        from codeact.mcp_server import build_server

        server = build_server(model=model, sandbox=sandbox, max_steps=max_steps, timeout=timeout, store=store)
    try:
        if transport == "stdio":
            server.run("stdio")
        else:
            server.run("streamable-http", host=host, port=port)
    finally:
        server.codeact_sessions.close()
