"""`codeact serve`: the agent server and its web page (binds 127.0.0.1 unless told otherwise).

Without `--token`/`--tokens-file` a random token is made for this run of the server and printed
as the page's address (`http://127.0.0.1:8000/#token=...`); the token sits in the URL's fragment,
which the browser keeps to itself (it is not sent to the server, nor logged).
"""

from __future__ import annotations

import functools
import secrets
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from codeact.cli import app
from codeact.cli._loading import load_tool
from codeact.cli._options import StoreOption, positive, print_error, sandbox_name, usage_errors
from codeact.cli._text import safe

__all__ = ["serve"]


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on. Anything but 127.0.0.1 exposes the "
                                      "server (use tokens, and a TLS proxy in front).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    token: Annotated[list[str] | None, typer.Option("--token", help="NAME:TOKEN (or TOKEN) a user may call "
                                                    "with; repeatable. Default: one random token.")] = None,
    tokens_file: Annotated[Path | None, typer.Option("--tokens-file", help="A file of NAME:TOKEN lines.")] = None,
    models: Annotated[str, typer.Option("--models", help="Comma-separated model specs clients may choose "
                                        "from; the first is the default.")] = "local",
    tools: Annotated[list[str] | None, typer.Option("--tool", "--tools", "-t", help="module:function or "
                                                    "file.py:function every run may call; repeatable")] = None,
    approve: Annotated[str | None, typer.Option("--approve", help="Comma-separated tool names whose calls "
                                                "wait for a person's approval on the page ('all': every "
                                                "tool).")] = None,
    mcp: Annotated[list[str] | None, typer.Option("--mcp", help="An MCP server whose tools runs may call: "
                                                 "\"CMD ARGS\" (stdio) or a URL; repeatable.")] = None,
    sandbox: Annotated[str, typer.Option(callback=sandbox_name, help="default (= local, isolated), local, "
                                         "or process (no isolation).")] = "default",
    timeout: Annotated[float, typer.Option(callback=positive, help="Seconds one code step may run.")] = 30.0,
    max_runs: Annotated[int, typer.Option(min=1, help="Runs going at once, all users together.")] = 8,
    data_dir: Annotated[Path | None, typer.Option(help="Where run workspaces are kept (default: next to "
                                                  "the run log).")] = None,
    store: StoreOption = None,
) -> None:
    """Serve the agent API and web page: start runs, watch them live, approve tool calls."""
    err = Console(stderr=True)
    with usage_errors(err):
        from codeact.models.registry import resolve_model
        from codeact.runs.store import RunStore
        from codeact.server import Limits, ServerConfig, Users, shared_model
        from codeact.server import serve as run_server
        from codeact.tools.approval import require_approval

        specs = [s.strip() for s in models.split(",") if s.strip()]
        if not specs:
            from codeact.errors import ConfigError

            raise ConfigError("--models lists no model")
        factories = {spec: shared_model(functools.partial(resolve_model, spec)) for spec in specs}
        entries = list(token or [])
        users = Users.from_file(tokens_file) if tokens_file else None
        made = ""
        if entries:
            users = Users.parse(entries)
        elif users is None:
            made = secrets.token_urlsafe(24)
            users = Users({made: "local"})
        loaded = [load_tool(spec) for spec in tools or []]
        if mcp:
            from codeact.tools.mcp import mcp_tools

            loaded += mcp_tools(*mcp)
        if approve:
            names = [n.strip() for n in approve.split(",") if n.strip()]
            loaded = require_approval(loaded, *([] if names == ["all"] else names))
        with RunStore(store) as opened:  # the log's own folder keeps the workspaces by default
            log_path = None if opened.path == ":memory:" else Path(opened.path)
        folder = data_dir or (log_path.parent / "server" if log_path else Path.cwd() / "codeact-server")
        config = ServerConfig(models=factories, default_model=specs[0], users=users, tools=loaded,
                              sandbox=sandbox, step_timeout=timeout, store=store, data_dir=folder,
                              limits=Limits(max_runs=max_runs))
    where = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    err.print(safe(f"codeact serve: {where}" + (f"#token={made}" if made else ""), "bold"))
    if made:
        err.print(safe("open that address; the token was made for this run of the server (--token to fix one)",
                       "dim"))
    try:
        run_server(config, host=host, port=port, log_level="warning")
    except OSError as exc:
        print_error(err, f"cannot serve on {host}:{port}: {exc}")
        raise typer.Exit(1) from None
