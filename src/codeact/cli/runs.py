"""`codeact runs`, `show`, `resume` and `replay`: the run log from the command line."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from codeact.cli import app
from codeact.cli.run import print_result
from codeact.errors import CodeactError, ConfigError

__all__ = ["list_runs", "replay", "resume", "show"]

StoreOption = Annotated[str | None, typer.Option("--store", help="Run log file or sqlite:/// URL "
                                                    "(default: $CODEACT_HOME/runs.db or the user data dir).")]
ToolsOption = Annotated[list[str] | None, typer.Option("--tool", "-t", help="module:function or "
                                                          "file.py:function; repeatable")]


@app.command("runs")
def list_runs(
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many runs, newest first.")] = 20,
    status: Annotated[str | None, typer.Option(help="Only runs with this status (e.g. crashed).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines instead of a table.")] = False,
    store: StoreOption = None,
) -> None:
    """List recorded runs: status, steps, tokens, cost and age."""
    with _errors():
        log = _open(store)
        records = log.runs(limit=limit, status=status)
    if as_json:
        for r in records:
            sys.stdout.write(json.dumps(_record_dict(r), ensure_ascii=False, default=repr) + "\n")
        return
    console = Console()
    if not records:
        console.print(f"No runs in {log.path}.")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("run", "status", "steps", "tokens", "cost", "age", "model", "task"):
        right = column in ("steps", "tokens", "cost", "age")
        table.add_column(column, justify="right" if right else "left", no_wrap=column != "task",
                         overflow="ellipsis")
    now = time.time()
    for r in records:
        table.add_row(r.id, Text(r.state, style=_STATUS_STYLE.get(r.state, "")), str(r.steps),
                      f"{r.total_tokens:,}", _cost(r.cost), _age(now - r.created), r.model,
                      _one_line(r.task, 60))
    console.print(table)


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(help="The run's id, or a unique prefix of it.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the run's events as JSON lines.")] = False,
    store: StoreOption = None,
) -> None:
    """Show a recorded run the way the live view showed it."""
    with _errors():
        log = _open(store)
        record = log.get(run_id)
        if as_json:
            for data in log.raw_events(record.id):
                sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
            return
        events = log.events(record.id)
    from codeact.cli.view import LiveView

    console = Console()
    console.print(Text.assemble(("run ", "bold"), record.id, "  ",
                                (record.state, _STATUS_STYLE.get(record.state, "")),
                                f"  {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(record.created))}"
                                f"  cost {_cost(record.cost)}", style="dim"))
    view = LiveView(console)
    for event in events:
        if event.kind == "run_resumed":
            console.print(Text(f"resumed from step {event.from_step} "  # type: ignore[attr-defined]
                               f"({event.reexecuted} recorded actions re-run)", style="bold yellow"))  # type: ignore[attr-defined]
        elif event.kind == "budget_hit":
            console.print(Text(event.message, style="bold red"))  # type: ignore[attr-defined]
        else:
            view.show(event)
    if record.state == "running":
        console.print(Text("still running", style="cyan"))
    elif record.state != "success":
        console.print(Text(f"{record.state}" + (f": {record.error}" if record.error else ""), style="yellow"))
        console.print(Text(f"continue it with `codeact resume {record.id}`", style="dim"))


@app.command()
def resume(
    run_id: Annotated[str, typer.Argument(help="The run's id, or a unique prefix of it.")],
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model spec; default: the run's.")] = None,
    tools: ToolsOption = None,
    live_tools: Annotated[bool, typer.Option(help="Call the tools again while rebuilding the kernel's "
                                             "state, instead of serving their recorded results.")] = False,
    max_steps: Annotated[int | None, typer.Option(help="Step limit; default: the run's.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds one code step may run.")] = None,
    sandbox: Annotated[str | None, typer.Option(help="default or process (no isolation).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole run as JSON on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live view on stderr.")] = False,
    store: StoreOption = None,
) -> None:
    """Continue a crashed or interrupted run from its last completed step."""
    err = Console(stderr=True)
    with _errors(err):
        log = _open(store)
        record = log.get(run_id)
        agent = _agent_for(record, log, model=model, tool_specs=tools, max_steps=max_steps,
                           timeout=timeout, sandbox=sandbox)
    view = None
    if not quiet:
        from codeact.cli.view import LiveView

        view = LiveView(err)
    result = None
    try:
        with _errors(err):
            for event in agent.resume(record.id, stream=True, live_tools=live_tools):
                if event.kind == "run_resumed" and view is not None:
                    err.print(Text(f"resuming run {record.id} at step {event.from_step} "  # type: ignore[attr-defined]
                                   f"({event.reexecuted} recorded actions re-run)", style="bold yellow"))  # type: ignore[attr-defined]
                elif view is not None:
                    view.show(event)
                if event.kind == "run_finished":
                    result = event.result  # type: ignore[attr-defined]
    finally:
        agent.close()
    assert result is not None
    print_result(result, as_json=as_json, err=err, quiet=quiet or view is None)


@app.command()
def replay(
    run_id: Annotated[str, typer.Argument(help="The run's id, or a unique prefix of it.")],
    tools: Annotated[list[str] | None, typer.Option("--tool", "-t", help="Call this real tool and "
                                                       "compare its results with the recording; "
                                                       "repeatable. Without it, results come from the log.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds one code step may run.")] = None,
    sandbox: Annotated[str | None, typer.Option(help="default or process (no isolation).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    store: StoreOption = None,
) -> None:
    """Re-run a recorded run with its recorded model replies and report the first divergence.

    Exits 0 when every observation matches the recording, 1 when one diverges.
    """
    from codeact.cli._loading import load_tool
    from codeact.runs.replay import replay_run

    err = Console(stderr=True)
    with _errors(err):
        log = _open(store)
        record = log.get(run_id)
        options = _sandbox_options(record.meta, timeout, sandbox)
        live = [load_tool(spec) for spec in tools] if tools else None
        report = replay_run(record.id, store=log, live_tools=live, **options)
    if as_json:
        sys.stdout.write(json.dumps({
            "run_id": report.run_id, "ok": report.ok, "status": report.result.status,
            "steps": len(report.result.steps),
            "divergences": [d.__dict__ for d in report.divergences],
        }, ensure_ascii=False, default=repr) + "\n")
    elif report.ok:
        err.print(Text(f"run {report.run_id}: {len(report.result.steps)} steps replayed, no divergence "
                       f"({report.result.status})", style="green"))
    else:
        first = report.divergences[0]
        more = len(report.divergences) - 1
        err.print(Text(f"run {report.run_id} diverges at step {first.step} ({first.what})", style="bold red"))
        err.print(Text("recorded:", style="bold"), Text(first.expected))
        err.print(Text("replayed:", style="bold"), Text(first.actual))
        if more:
            err.print(Text(f"... and {more} more difference(s) after it", style="dim"))
    if not report.ok:
        raise typer.Exit(1)


# -- helpers --------------------------------------------------------------------------------------
_STATUS_STYLE = {"success": "green", "running": "cyan", "crashed": "bold red", "error": "red",
                 "model_error": "red", "interrupted": "yellow", "max_steps": "yellow",
                 "budget_exceeded": "yellow"}


class _errors:
    """Print a CodeactError as one line and exit 2, instead of a traceback."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, CodeactError):
            self.console.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(2)


def _open(store: str | None) -> Any:
    from codeact.runs.store import RunStore

    return RunStore(store)


def _agent_for(record: Any, log: Any, *, model: str | None, tool_specs: list[str] | None,
               max_steps: int | None, timeout: float | None, sandbox: str | None) -> Any:
    """A CodeAgent like the one that made the run: CLI options kept with the run fill the gaps."""
    from codeact.agent.code_agent import CodeAgent
    from codeact.cli._loading import load_tool, split_list
    from codeact.models.registry import resolve_model

    if record.agent != CodeAgent.kind:
        raise ConfigError(f"run {record.id} was made by a {record.agent!r} agent; resume it from Python "
                          "with that agent's resume()")
    meta = record.meta
    spec = model or meta.get("model_spec") or record.model
    try:
        chosen = resolve_model(spec)
    except ConfigError as exc:
        raise ConfigError(f"cannot rebuild the run's model from {spec!r} ({exc}); pass --model") from None
    specs = tool_specs if tool_specs is not None else list(meta.get("tool_specs") or [])
    loaded = [load_tool(s) for s in specs]
    wanted = list(meta.get("tools") or {})
    missing = [name for name in wanted if name not in {t.name for t in loaded}]
    if missing:
        raise ConfigError(f"run {record.id} used tools {', '.join(missing)}; pass them with --tool module:function")
    budget = meta.get("budget") or {}
    imports = meta.get("imports")
    agent = CodeAgent(
        chosen,
        loaded,
        authorized_imports=split_list(imports) if isinstance(imports, str) else imports,
        max_steps=max_steps or int(budget.get("max_steps") or 10),
        max_tokens=budget.get("max_tokens"),
        max_seconds=budget.get("max_seconds"),
        store=log,
        **_sandbox_options(meta, timeout, sandbox),
    )
    agent.run_meta = {k: v for k, v in meta.items() if k not in ("budget", "tools")}
    return agent


def _sandbox_options(meta: dict[str, Any], timeout: float | None, sandbox: str | None) -> dict[str, Any]:
    from codeact.sandbox import resolve_sandbox

    seconds = timeout if timeout is not None else float(meta.get("timeout") or 30.0)
    name = sandbox or meta.get("sandbox") or "default"
    return {"sandbox": lambda: resolve_sandbox(name, timeout=seconds), "step_timeout": seconds}




def _record_dict(r: Any) -> dict[str, Any]:
    from codeact.runs.codec import encode_value

    return {"id": r.id, "status": r.state, "steps": r.steps, "prompt_tokens": r.prompt_tokens,
            "completion_tokens": r.completion_tokens, "cost": r.cost, "created": r.created,
            "updated": r.updated, "model": r.model, "agent": r.agent, "task": r.task,
            "output": encode_value(r.output), "error": r.error}


def _cost(cost: float | None) -> str:
    if cost is None:
        return "?"
    return "$0" if cost == 0 else f"${cost:.4f}" if cost < 1 else f"${cost:.2f}"


def _age(seconds: float) -> str:
    seconds = max(seconds, 0)
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def _one_line(text: str, limit: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"

