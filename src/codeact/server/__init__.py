"""`codeact serve`: an HTTP API and a web page to start, watch, steer and approve runs.

`build_app(config)` is the ASGI app (FastAPI); `serve(config, host=..., port=...)` runs it with
uvicorn. Both need the `serve` extra: `pip install 'codeact[serve]'`.
"""

from __future__ import annotations

from typing import Any

from codeact.server.config import Limits, ServerConfig, Users, shared_model

__all__ = ["Limits", "ServerConfig", "Users", "build_app", "serve", "shared_model"]


def build_app(config: ServerConfig) -> Any:
    """The ASGI app serving `config`'s runs, API and page."""
    from codeact._optional import require

    require("fastapi", extra="serve", feature="codeact serve")
    from codeact.server.app import build_app as build

    return build(config)


def serve(config: ServerConfig, *, host: str = "127.0.0.1", port: int = 8000, log_level: str = "warning") -> None:
    """Serve `config` on host:port until interrupted (Ctrl-C stops the runs, each resumable)."""
    from codeact._optional import require

    require("uvicorn", extra="serve", feature="codeact serve")
    import uvicorn

    uvicorn.run(build_app(config), host=host, port=port, log_level=log_level, timeout_graceful_shutdown=10)
