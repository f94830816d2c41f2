"""`codeact run TASK`: run one task and print the answer as the last line of stdout."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from codeact.cli import app
from codeact.cli._loading import load_tool, split_list
from codeact.errors import CodeactError, ConfigError
from codeact.runs.events import StepFinished, event_to_dict, to_jsonable

__all__ = ["print_result", "result_to_dict", "run"]


@app.command()
def run(
    task: Annotated[str, typer.Argument(help="What the agent should do.")],
    model: Annotated[str, typer.Option("--model", "-m", help="local, local-small, openai:MODEL, "
                                       "openai-compat:URL#MODEL, anthropic:MODEL, litellm:MODEL")] = "local",
    tools: Annotated[list[str] | None, typer.Option("--tool", "-t", help="module:function or "
                                                       "file.py:function; repeatable")] = None,
    max_steps: Annotated[int, typer.Option(help="Steps before the agent must answer.")] = 10,
    imports: Annotated[str | None, typer.Option(help="Comma-separated modules the code may import "
                                                   "(default: any).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds one code step may run.")] = 30.0,
    sandbox: Annotated[str, typer.Option(help="default (= local, isolated) or process (no isolation).")]
    = "default",
    allow_net: Annotated[list[str] | None, typer.Option("--allow-net", help="HOST:PORT the code may "
                                                        "connect to (isolated sandbox); repeatable.")] = None,
    workspace: Annotated[Path | None, typer.Option(help="Directory the code works in; kept after "
                                                      "the run.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole run as JSON on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live view on stderr.")] = False,
) -> None:
    """Run an agent on TASK. The live view goes to stderr; the answer is stdout's last line."""
    err = Console(stderr=True)
    try:
        agent = _build_agent(model, tools or [], max_steps, imports, timeout, sandbox, workspace, allow_net)
    except CodeactError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    view = None
    if not quiet:
        from codeact.cli.view import LiveView

        view = LiveView(err)
    result = None
    try:
        for event in agent.run(task, stream=True):
            if view is not None:
                view.show(event)
            if event.kind == "run_finished":
                result = event.result  # type: ignore[attr-defined]
    except CodeactError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from None
    finally:
        agent.close()
    assert result is not None
    if view is not None and result.run_id:
        err.print(f"[dim]run {result.run_id} · codeact show {result.run_id}[/]")
    print_result(result, as_json=as_json, err=err, quiet=quiet or view is None)


def print_result(result: Any, *, as_json: bool, err: Console, quiet: bool) -> None:
    """The answer (or the JSON run) on stdout; exit 1 when the run did not succeed."""
    if as_json:
        data = result_to_dict(result)
        data["run_id"] = result.run_id
        sys.stdout.write(json.dumps(data, ensure_ascii=False, default=repr) + "\n")
    elif result.output is not None:
        sys.stdout.write(_answer_text(result.output) + "\n")
    if result.status != "success":
        if not as_json and quiet:
            err.print(f"[bold red]{result.status}:[/] {result.error}")
        raise typer.Exit(1)


def _build_agent(model_spec: str, tool_specs: list[str], max_steps: int, imports: str | None,
                 timeout: float, sandbox_name: str, workspace: Path | None,
                 allow_net: list[str] | None = None) -> Any:
    from codeact.agent.code_agent import CodeAgent
    from codeact.models.registry import resolve_model
    from codeact.sandbox import resolve_sandbox

    tools = [load_tool(spec) for spec in tool_specs]
    model = resolve_model(model_spec)
    options: dict[str, Any] = {"timeout": timeout}
    if workspace is not None:
        workspace.mkdir(parents=True, exist_ok=True)
        options["workspace"] = workspace
    if allow_net:
        if sandbox_name == "process":
            raise ConfigError("--allow-net needs the isolated sandbox; the process sandbox has the host's network")
        options["network"] = allow_net
    agent = CodeAgent(
        model,
        tools,
        sandbox=lambda: resolve_sandbox(sandbox_name, **options),
        authorized_imports=split_list(imports),
        step_timeout=timeout,
        max_steps=max_steps,
    )
    # Kept with the run so `codeact resume RUN_ID` can rebuild the same agent.
    agent.run_meta = {"model_spec": model_spec, "tool_specs": tool_specs, "sandbox": sandbox_name,
                      "timeout": timeout, "imports": imports}
    return agent


def _answer_text(output: Any) -> str:
    """Strings verbatim; anything else as JSON, so scripts can parse it."""
    return output if isinstance(output, str) else json.dumps(output, default=repr, ensure_ascii=False)


def result_to_dict(result: Any) -> dict[str, Any]:
    """The run as plain JSON-ready data, for `--json`."""
    return {
        "status": result.status,
        "output": to_jsonable(result.output),
        "error": result.error,
        "usage": {"prompt_tokens": result.usage.prompt_tokens,
                  "completion_tokens": result.usage.completion_tokens,
                  "total_tokens": result.usage.total_tokens},
        "seconds": round(result.seconds, 3),
        "steps": [event_to_dict(StepFinished(s))["step"] for s in result.steps],
    }
