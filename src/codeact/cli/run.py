"""`codeact run TASK`: run one task; the answer, and only the answer, goes to stdout.

stdout carries the answer only when the run succeeded, so `x=$(codeact run ...)` never captures
a half-finished value: a failed run prints nothing there and exits 1, an interrupted one
(Ctrl-C) exits 130 and says on stderr how to resume it. The live view and every message go to
stderr. The answer is printed as text that cannot drive the terminal (see `_text.visible`);
`--json` carries it exactly.
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from codeact.cli import app
from codeact.cli._answer import answer_json, answer_text
from codeact.cli._approval import TerminalApprover, approver_for
from codeact.cli._loading import load_tool, split_list
from codeact.cli._options import (
    MaxCostOption,
    MaxSecondsOption,
    MaxTokensOption,
    PricesOption,
    StoreOption,
    positive,
    print_error,
    sandbox_name,
    task_text,
    usage_errors,
)
from codeact.cli._text import json_line, safe, visible
from codeact.errors import CodeactError, ConfigError
from codeact.runs.events import Event, StepFinished, event_to_dict

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "consume", "print_result", "result_to_dict", "run"]

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
"""128 + SIGINT, what shells report for a command stopped with Ctrl-C."""


@app.command()
def run(
    task: Annotated[str, typer.Argument(metavar="TASK", help="What the agent should do.", callback=task_text)],
    model: Annotated[str, typer.Option("--model", "-m", help="local, local-small, openai:MODEL, "
                                       "openai-compat:URL#MODEL, anthropic:MODEL, litellm:MODEL")] = "local",
    tools: Annotated[list[str] | None, typer.Option("--tool", "-t", help="module:function or "
                                                       "file.py:function; repeatable")] = None,
    mcp: Annotated[list[str] | None, typer.Option("--mcp", help="An MCP server whose tools the code may "
                                                 "call: \"CMD ARGS\" (stdio) or a URL; repeatable.")] = None,
    max_steps: Annotated[int, typer.Option(min=1, help="Steps before the agent must answer.")] = 10,
    max_tokens: MaxTokensOption = None,
    max_seconds: MaxSecondsOption = None,
    max_cost: MaxCostOption = None,
    prices: PricesOption = None,
    max_reply_tokens: Annotated[int | None, typer.Option(
        "--max-reply-tokens", min=1, help="At most this many generated tokens per model call.")] = None,
    imports: Annotated[str | None, typer.Option(help="Comma-separated modules the code may import "
                                                   "(default: any).")] = None,
    timeout: Annotated[float, typer.Option(callback=positive, help="Seconds one code step may run.")] = 30.0,
    sandbox: Annotated[str, typer.Option(callback=sandbox_name, help="default (= local, isolated), local, "
                                         "or process (no isolation).")] = "default",
    allow_net: Annotated[list[str] | None, typer.Option("--allow-net", help="HOST:PORT the code may "
                                                        "connect to (isolated sandbox); repeatable.")] = None,
    workspace: Annotated[Path | None, typer.Option(help="Directory the code works in; kept after "
                                                      "the run.")] = None,
    store: StoreOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole run as JSON on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live view on stderr.")] = False,
    approval: Annotated[str, typer.Option(help="Tool calls that need approval: ask (in the terminal; "
                                          "denied when stdin is not one), auto (approve all) or deny.")] = "ask",
    approval_timeout: Annotated[float, typer.Option(callback=positive, help="Seconds an approval may "
                                                    "wait before the call is denied.")] = 300.0,
    needs_approval: Annotated[list[str] | None, typer.Option("--needs-approval", help="A tool (by name, "
                                                             "MCP tools too) whose calls need approval; "
                                                             "repeatable.")] = None,
    images: Annotated[list[Path] | None, typer.Option("--image", help="An image file (PNG, JPEG, GIF, WebP) "
                                                      "that goes with the task; repeatable. A model that "
                                                      "does not read images gets a note instead.")] = None,
) -> None:
    """Run an agent on TASK. The live view goes to stderr; on success the answer goes to stdout.

    Exits 0 with an answer, 1 when the run ended without one, 130 when interrupted, 2 for usage errors.
    """
    err = Console(stderr=True)
    with usage_errors(err):
        agent = _build_agent(
            model, tools or [], max_steps, imports, timeout, sandbox, workspace, allow_net,
            budgets={"max_tokens": max_tokens, "max_seconds": max_seconds, "max_cost": max_cost},
            prices=prices, max_reply_tokens=max_reply_tokens, store=store, mcp_servers=mcp,
            approver=approver_for(approval, err), approval_timeout=approval_timeout,
            needs_approval=needs_approval or [],
        )
    with usage_errors(err):
        events = agent.run(task, stream=True, images=[str(i) for i in images or []] or None)
    result, run_id = consume(agent, events, err, quiet=quiet)
    print_result(result, run_id=run_id, as_json=as_json, err=err, quiet=quiet)


def consume(agent: Any, events: Generator[Event, None, None], err: Console, *,
            quiet: bool, run_id: str | None = None) -> tuple[Any, str | None]:
    """Show the run's events (unless quiet) and return its RunResult (None if it never finished)
    and its id. Ctrl-C is passed into the run, which then ends as "interrupted"."""
    view = None
    if not quiet:
        from codeact.cli.view import LiveView

        view = LiveView(err)
    if isinstance(getattr(agent, "approver", None), TerminalApprover):
        agent.approver.pause = view.pause if view is not None else None  # a prompt replaces the status line
    result = None
    try:
        while True:
            try:
                event = next(events)
                if event.kind == "run_started":
                    run_id = getattr(event, "run_id", None) or run_id
                if view is not None:
                    view.show(event)
                if event.kind == "run_finished":
                    result = getattr(event, "result", None)
            except StopIteration:
                break
            except KeyboardInterrupt:
                result = _interrupt(events) or result
                break
            except CodeactError as exc:
                if view is not None:
                    view.close()
                print_error(err, exc)
                raise typer.Exit(EXIT_FAILED) from None
    finally:
        if view is not None:
            view.close()
        events.close()
        agent.close()
    if result is None:  # stopped before the loop could say how the run ended
        _say_interrupted(err, run_id)
        raise typer.Exit(EXIT_INTERRUPTED)
    return result, run_id


def _interrupt(events: Generator[Event, None, None]) -> Any:
    """Hand Ctrl-C to the run so it ends (and is logged) as interrupted; its result, if it got one."""
    try:
        event: Event | None = events.throw(KeyboardInterrupt())
        while event is not None:
            if event.kind == "run_finished":
                return getattr(event, "result", None)
            event = next(events, None)
    except (KeyboardInterrupt, StopIteration, CodeactError):
        pass
    return None


def print_result(result: Any, *, run_id: str | None = None, as_json: bool, err: Console, quiet: bool) -> None:
    """The answer on stdout on success (or the JSON run, whatever the status); otherwise the
    status on stderr with how to go on, and exit 1 (130 when interrupted)."""
    run_id = getattr(result, "run_id", None) or run_id
    if as_json:
        data = result_to_dict(result)
        data["run_id"] = run_id
        sys.stdout.write(json_line(data, default=repr) + "\n")
    elif result.status == "success":
        if not quiet and run_id:
            err.print(safe(f"run {run_id} · codeact show {run_id}", "dim"))
        sys.stdout.write(visible(answer_text(result.output)) + "\n")
    if result.status == "success":
        return
    if result.status == "interrupted":
        _say_interrupted(err, run_id)
        raise typer.Exit(EXIT_INTERRUPTED)
    if quiet or as_json:
        print_error(err, result.error or "no answer", label=result.status)
    if run_id:
        err.print(safe(f"continue it with `codeact resume {run_id}`{_RAISE_LIMIT.get(result.status, '')}", "dim"))
    raise typer.Exit(EXIT_FAILED)


_RAISE_LIMIT = {"max_steps": " --max-steps N", "budget_exceeded": " and a larger --max-tokens, --max-seconds or "
                                                                 "--max-cost"}


def _say_interrupted(err: Console, run_id: str | None) -> None:
    hint = f"; continue it with `codeact resume {run_id}`" if run_id else ""
    err.print(Text.assemble(("interrupted", "bold yellow"), safe(hint)))


def _build_agent(model_spec: str, tool_specs: list[str], max_steps: int, imports: str | None,
                 timeout: float, sandbox_name: str, workspace: Path | None,
                 allow_net: list[str] | None = None, *, budgets: dict[str, float | None] | None = None,
                 prices: str | None = None, max_reply_tokens: int | None = None,
                 store: str | None = None, mcp_servers: list[str] | None = None, approver: Any = None,
                 approval_timeout: float | None = 300.0, needs_approval: list[str] | None = None) -> Any:
    from codeact.agent.code_agent import CodeAgent
    from codeact.models.registry import resolve_model
    from codeact.runs.pricing import load_prices
    from codeact.sandbox import resolve_sandbox

    tools = [load_tool(spec) for spec in tool_specs]
    if mcp_servers:
        from codeact.tools.mcp import mcp_tools

        tools += mcp_tools(*mcp_servers)  # connected now, closed when the command exits
    if needs_approval:
        from codeact.tools.approval import require_approval

        require_approval(tools, *needs_approval)
    model_options: dict[str, Any] = {} if max_reply_tokens is None else {"max_tokens": max_reply_tokens}
    try:
        model = resolve_model(model_spec, **model_options)
    except TypeError as exc:  # a backend that does not take max_tokens
        raise ConfigError(f"model {model_spec!r} does not accept --max-reply-tokens ({exc})") from None
    options: dict[str, Any] = {"timeout": timeout}
    if workspace is not None:
        workspace.mkdir(parents=True, exist_ok=True)
        options["workspace"] = workspace
    if allow_net:
        if sandbox_name == "process":
            raise ConfigError("--allow-net needs the isolated sandbox; the process sandbox has the host's network")
        options["network"] = allow_net
    limits: dict[str, Any] = {k: v for k, v in (budgets or {}).items() if v is not None}
    agent = CodeAgent(
        model,
        tools,
        sandbox=lambda: resolve_sandbox(sandbox_name, **options),
        authorized_imports=split_list(imports),
        step_timeout=timeout,
        max_steps=max_steps,
        prices=load_prices(prices) if prices else None,
        store=store,
        approver=approver,
        approval_timeout=approval_timeout,
        **limits,
    )
    # Kept with the run so `codeact resume RUN_ID` can rebuild the same agent.
    agent.run_meta = {"model_spec": model_spec, "tool_specs": tool_specs, "sandbox": sandbox_name,
                      "timeout": timeout, "imports": imports, "max_reply_tokens": max_reply_tokens,
                      "prices": str(Path(prices).resolve()) if prices else None,
                      "needs_approval": list(needs_approval or [])}
    if mcp_servers:  # `codeact resume` connects them again; env values are never kept (tools/mcp.py)
        from codeact.tools.mcp import server_specs

        agent.run_meta["mcp_servers"] = server_specs(*mcp_servers)
    return agent


def result_to_dict(result: Any) -> dict[str, Any]:
    """The run as plain JSON-ready data, for `--json`. `output` is the answer as `answer_json`
    gives it: JSON values as they are, others as {"type", "repr", "value"?}."""
    return {
        "status": result.status,
        "output": answer_json(result.output),
        "error": result.error,
        "usage": {"prompt_tokens": result.usage.prompt_tokens,
                  "completion_tokens": result.usage.completion_tokens,
                  "total_tokens": result.usage.total_tokens},
        "seconds": round(result.seconds, 3),
        "steps": [event_to_dict(StepFinished(s))["step"] for s in result.steps],
        "files": [{"path": f.path, "change": f.change, "size": f.size, "type": f.type}
                  for f in getattr(result, "files", ())],
    }
