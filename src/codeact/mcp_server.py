"""codeact as an MCP server: any MCP host gets codeact's agent, its sandbox and its run log.

Tools offered (`codeact mcp serve`, over stdio or streamable HTTP):

- `run_task(task, max_steps?)`: runs a `CodeAgent` with the server's model, with a progress notification per
  step; returns the answer, the status and the run id.
- `python(code, session?)`: runs code in a persistent isolated session (variables survive
  between calls). Over stdio the one client has one session; over HTTP the transport's session
  id picks it when there is one, and otherwise (the stateless 2026 protocol) each result
  carries a `session` id that the client passes back to continue.
- `list_runs(limit?)`, `get_run(run_id)`: read the run store.

The agent and the sandbox are synchronous; each call runs in a worker thread so the server's
event loop keeps answering (and keeps sending progress). Sessions are capped in number: past
the cap, the oldest session is closed.
"""


import json
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from codeact._optional import require
from codeact.errors import ConfigError
from codeact.sandbox.base import Sandbox

__all__ = ["build_server", "jsonable"]

_MAX_SESSIONS = 16
_MAX_TEXT = 100_000


def jsonable(value: Any) -> Any:
    """`value` if it is JSON data (bounded), else its repr (bounded): what an MCP result may hold."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return repr(value)[:_MAX_TEXT]
    return value if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + " [... cut ...]"


class _Sessions:
    """Sandboxes by session id, capped in number: past the cap, the least recently used is closed."""

    def __init__(self, factory: Callable[[], Sandbox]) -> None:
        self.factory = factory
        self.lock = threading.Lock()
        self.sandboxes: OrderedDict[str, Sandbox] = OrderedDict()

    def get(self, key: str) -> Sandbox:
        with self.lock:
            sandbox = self.sandboxes.get(key)
            if sandbox is not None:
                self.sandboxes.move_to_end(key)
                return sandbox
            sandbox = self.factory()
            sandbox.start({})
            self.sandboxes[key] = sandbox
            while len(self.sandboxes) > _MAX_SESSIONS:
                self.sandboxes.popitem(last=False)[1].close()
            return sandbox

    def known(self, key: str) -> bool:
        with self.lock:
            return key in self.sandboxes

    def close(self) -> None:
        with self.lock:
            sandboxes = list(self.sandboxes.values())
            self.sandboxes.clear()
        for sandbox in sandboxes:
            sandbox.close()


def _session_key(ctx: Any, asked: str) -> str:
    """Which session a `python` call uses.

    Over stdio the server process has one client: its session is "stdio". Over HTTP the
    transport's session id is used when the client has one (`mcp-session-id`); the newer,
    stateless protocol has none, so a call without `session` starts a new one, whose id comes
    back in the result for the client to pass on.
    """
    if asked:
        return asked
    request = getattr(ctx.request_context, "request", None)
    if request is None:
        return "stdio"
    header = request.headers.get("mcp-session-id")
    return f"http-{header[:100]}" if header else secrets.token_hex(12)


def build_server(
    *,
    model: str = "local",
    sandbox: str = "default",
    max_steps: int = 10,
    timeout: float = 30.0,
    store: str | None = None,
) -> Any:
    """The MCP server (an `mcp` SDK `MCPServer`); `.run("stdio")` or `.run("streamable-http", ...)`.

    Args:
        model: the model spec `run_task` uses (`openai:gpt-4o`...).
        sandbox: `default`/`local` (isolated) or `process`, for `run_task` and `python`.
        max_steps: the default step budget of `run_task`.
        timeout: seconds one code step (or one `python` call) may run.
        store: the run store (default: codeact's).
    """
    require("mcp", extra="mcp", feature="codeact mcp serve")
    import anyio
    from mcp.server.mcpserver import Context, MCPServer

    from codeact.agent.code_agent import CodeAgent
    from codeact.models.registry import resolve_model
    from codeact.runs.store import open_store
    from codeact.sandbox import resolve_sandbox

    def make_sandbox() -> Sandbox:
        return resolve_sandbox(sandbox, timeout=timeout)

    sessions = _Sessions(make_sandbox)
    server: Any = MCPServer("codeact", instructions="Run Python in an isolated sandbox, or whole agent tasks.")
    server.codeact_sessions = sessions

    @server.tool()
    async def run_task(task: str, ctx: Context, max_steps: int = max_steps) -> dict[str, Any]:
        """Run a codeact agent on a task; returns its answer, status and run id.

        Args:
            task: what the agent should do.
            max_steps: steps before the agent must answer.
        """
        # The model is the server's choice, not the client's: a client-chosen spec could point an
        # OpenAI-compatible client holding the host's API key at any URL.
        if max_steps < 1 or max_steps > 100:
            raise ConfigError("max_steps must be between 1 and 100")
        agent = CodeAgent(resolve_model(model), sandbox=make_sandbox, max_steps=max_steps,
                          step_timeout=timeout, store=store)

        def drive() -> tuple[Any, str | None]:
            result, run_id = None, None
            try:
                for event in agent.run(task, stream=True):
                    if event.kind == "run_started":
                        run_id = getattr(event, "run_id", None) or run_id
                    elif event.kind == "step_finished":
                        step = getattr(event, "step", None)
                        index = getattr(step, "index", 0)
                        anyio.from_thread.run(ctx.report_progress, float(index), float(max_steps), f"step {index}")
                    elif event.kind == "run_finished":
                        result = getattr(event, "result", None)
            finally:
                agent.close()
            return result, run_id

        result, run_id = await anyio.to_thread.run_sync(drive)
        return {
            "answer": jsonable(getattr(result, "output", None)),
            "status": getattr(result, "status", "unknown"),
            "run_id": getattr(result, "run_id", None) or run_id,
            "steps": len(getattr(result, "steps", ())),
        }

    @server.tool()
    async def python(code: str, ctx: Context, session: str = "") -> dict[str, Any]:
        """Run Python in a persistent isolated session (variables persist between calls).

        Args:
            code: the code; the value of a last expression comes back as `result`.
            session: the `session` an earlier result returned, to continue in it (over stdio
                the one client has one session; leave it empty).
        """
        if session and not sessions.known(session[:100]):
            raise ConfigError(f"there is no session {session[:100]!r} (it may have been closed); omit it to start one")
        key = _session_key(ctx, session[:100])

        def execute() -> dict[str, Any]:
            execution = sessions.get(key).execute(code, timeout=timeout)
            error = execution.error
            return {
                "stdout": execution.stdout,
                "stderr": execution.stderr,
                "result": execution.result,
                "error": None if error is None else f"{error.type}: {error.message}",
                "timed_out": execution.timed_out,
                "state_lost": execution.state_lost,
                "session": key,
            }

        return await anyio.to_thread.run_sync(execute)

    @server.tool()
    def list_runs(limit: int = 20) -> list[dict[str, Any]]:
        """The latest runs: id, task, status, steps, tokens."""
        runs_store = open_store(store)
        if runs_store is None:
            return []
        return [
            {"id": r.id, "task": r.task[:500], "status": r.status, "steps": r.steps, "model": r.model,
             "total_tokens": r.total_tokens, "created": r.created}
            for r in runs_store.runs(limit=max(1, min(limit, 200)))
        ]

    @server.tool()
    def get_run(run_id: str) -> dict[str, Any]:
        """One run: its summary, answer, error and the code of each step."""
        runs_store = open_store(store)
        if runs_store is None:
            raise ConfigError("there is no run store")
        record = runs_store.get(runs_store.resolve(run_id))
        codes = [e for e in runs_store.raw_events(record.id) if e.get("kind") == "action_parsed"]
        return {
            "id": record.id, "task": record.task, "status": record.status, "steps": record.steps,
            "model": record.model, "output": jsonable(record.output), "error": record.error,
            "prompt_tokens": record.prompt_tokens, "completion_tokens": record.completion_tokens,
            "code": [str(e.get("code") or "")[:_MAX_TEXT] for e in codes[:100]],
        }

    return server
