"""`codeact chat`: a conversation in the terminal, one turn per line, one kernel for all of them.

Each line is a turn (`agent.run(line, reset=False)`): the agent keeps the messages and the
kernel's variables between turns, and each turn is its own run in the log, linked to the
conversation. Ctrl-C during a turn interrupts that turn only (it is logged as interrupted);
at the prompt it clears the line; Ctrl-D or `/exit` ends the session. `/reset` starts over,
`/save FILE` writes the conversation as JSON. Answers go to stdout (as text that cannot drive
the terminal), the live view and messages to stderr; with stdin not a terminal no prompt is
shown, so the command can be driven through a pipe.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from codeact.cli import app
from codeact.cli._answer import answer_text
from codeact.cli._approval import TerminalApprover, approver_for
from codeact.cli._options import (
    MaxCostOption,
    MaxSecondsOption,
    MaxTokensOption,
    StoreOption,
    positive,
    print_error,
    sandbox_name,
    usage_errors,
)
from codeact.cli._text import json_line, safe, visible
from codeact.errors import CodeactError
from codeact.runs.events import Event, to_jsonable

__all__ = ["chat", "save_conversation"]

HELP = "/reset starts over, /save FILE writes the conversation as JSON, /exit (or Ctrl-D) ends it."


@app.command()
def chat(
    model: Annotated[str, typer.Option("--model", "-m", help="local, local-small, openai:MODEL, "
                                       "openai-compat:URL#MODEL, anthropic:MODEL, litellm:MODEL")] = "local",
    tools: Annotated[list[str] | None, typer.Option("--tool", "-t", help="module:function or "
                                                       "file.py:function; repeatable")] = None,
    max_steps: Annotated[int, typer.Option(min=1, help="Steps per turn before the agent must answer.")] = 10,
    max_tokens: MaxTokensOption = None,
    max_seconds: MaxSecondsOption = None,
    max_cost: MaxCostOption = None,
    imports: Annotated[str | None, typer.Option(help="Comma-separated modules the code may import "
                                                   "(default: any).")] = None,
    timeout: Annotated[float, typer.Option(callback=positive, help="Seconds one code step may run.")] = 30.0,
    sandbox: Annotated[str, typer.Option(callback=sandbox_name, help="default (= local, isolated), local, "
                                         "or process (no isolation).")] = "default",
    workspace: Annotated[Path | None, typer.Option(help="Directory the code works in; kept after "
                                                      "the session.")] = None,
    store: StoreOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live view on stderr.")] = False,
) -> None:
    """Talk to an agent: each line is a task; variables and files carry over between turns."""
    from codeact.cli.run import _build_agent

    err = Console(stderr=True)
    with usage_errors(err):
        agent = _build_agent(model, tools or [], max_steps, imports, timeout, sandbox, workspace, store=store,
                             budgets={"max_tokens": max_tokens, "max_seconds": max_seconds, "max_cost": max_cost},
                             approver=approver_for("ask", err))
    interactive = sys.stdin.isatty()
    if interactive:
        _enable_line_history()
        err.print(safe(HELP, "dim"))
    try:
        for line in _lines(interactive, err):
            text = line.strip()
            if not text:
                continue
            if text.startswith("/"):
                if not _command(agent, text, err):
                    break
                continue
            _turn(agent, text, err, quiet=quiet)
    finally:
        agent.close()


def _lines(interactive: bool, err: Console) -> Iterator[str]:
    while True:
        try:
            if interactive:
                yield input("› ")
            else:
                line = sys.stdin.readline()
                if not line:
                    return
                yield line
        except EOFError:
            return
        except KeyboardInterrupt:  # at the prompt: drop the line, keep the session
            err.print()
            if not interactive:
                return


def _command(agent: Any, text: str, err: Console) -> bool:
    """Carry out a /command; False ends the session."""
    name, _, argument = text.partition(" ")
    if name in ("/exit", "/quit"):
        return False
    if name == "/reset":
        agent.reset()
        err.print(safe("conversation reset: a fresh kernel and no history", "dim"))
    elif name == "/save":
        if not argument.strip():
            print_error(err, "/save needs a file name: /save FILE")
        else:
            try:
                path = save_conversation(agent, Path(argument.strip()).expanduser())
            except OSError as exc:
                print_error(err, exc)
            else:
                err.print(safe(f"saved {len(agent.history)} messages to {path}", "dim"))
    elif name == "/help":
        err.print(safe(HELP))
    else:
        print_error(err, f"unknown command {name}; {HELP}")
    return True


def save_conversation(agent: Any, path: Path) -> Path:
    """The conversation as JSON: its id and every message (role, content, tool calls)."""
    data = {"conversation_id": agent.conversation_id, "messages": [to_jsonable(m) for m in agent.history]}
    path.write_text(json_line(data, indent=1) + "\n", encoding="utf-8")
    return path


def _turn(agent: Any, text: str, err: Console, *, quiet: bool) -> None:
    """One turn, shown live; Ctrl-C ends this turn (as interrupted), not the session."""
    from codeact.cli.run import _interrupt
    from codeact.cli.view import LiveView

    view = None if quiet else LiveView(err)
    if isinstance(agent.approver, TerminalApprover):
        agent.approver.pause = view.pause if view is not None else None  # a prompt replaces the status line
    events = agent.run(text, stream=True, reset=False)
    result = None
    try:
        while True:
            try:
                event: Event = next(events)
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
        print_error(err, exc)
    finally:
        if view is not None:
            view.close()
        events.close()
    if result is None:
        err.print(safe("interrupted", "bold yellow"))
    elif result.status == "success":
        sys.stdout.write(visible(answer_text(result.output)) + "\n")
        sys.stdout.flush()
    else:
        print_error(err, result.error or "no answer", label=result.status)


def _enable_line_history() -> None:
    """Arrow keys and history at the prompt, where the platform has readline."""
    try:
        import readline  # noqa: F401 - importing it is what makes input() use it
    except ImportError:
        pass
