"""`codeact runs`, `show`, `resume` and `replay`: the run log from the command line.

Everything read from the log (tasks, model names, ids, errors, events) is shown through
`_text.safe()`: a log is data written by models and sandboxes, never markup or terminal control.
"""

from __future__ import annotations

import sys
import time
import typing
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from codeact.cli import app
from codeact.cli._options import (
    MaxCostOption,
    MaxSecondsOption,
    MaxTokensOption,
    PricesOption,
    StoreOption,
    positive,
    sandbox_name,
    usage_errors,
)
from codeact.cli._text import json_line, safe
from codeact.cli.run import consume, print_result
from codeact.errors import ConfigError

__all__ = ["STATUSES", "list_runs", "replay", "resume", "show"]

ToolsOption = Annotated[list[str] | None, typer.Option("--tool", "-t", help="module:function or "
                                                          "file.py:function; repeatable")]


def _statuses() -> tuple[str, ...]:
    from codeact.runs.events import RunStatus

    return ("running", "crashed", *typing.get_args(RunStatus), "error")


STATUSES = _statuses()
"""What `--status` can filter on: a run's final status, "running", or "crashed" (a running run
whose process is gone), or "error" (a run that stopped on an unexpected exception)."""


def _status_name(value: str | None) -> str | None:
    if value is not None and value not in STATUSES:
        raise typer.BadParameter(f"{value!r} is not a run status; the statuses are {', '.join(STATUSES)}")
    return value


@app.command("runs")
def list_runs(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many runs, newest first.")] = 20,
    status: Annotated[str | None, typer.Option(callback=_status_name, help="Only runs with this status: "
                                               + ", ".join(STATUSES) + ".")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines instead of a table.")] = False,
    store: StoreOption = None,
) -> None:
    """List recorded runs: status, steps, tokens, cost and age."""
    with usage_errors():
        log = _open(store)
        records = log.runs(limit=limit, status=status)
    if as_json:
        for r in records:
            sys.stdout.write(json_line(_record_dict(r), default=repr) + "\n")
        return
    console = Console()
    if not records:
        console.print(safe(f"No runs in {log.path}" + (f" with status {status}." if status else ".")))
        return
    console.print(runs_table(records, time.time(), width=console.width))


def runs_table(records: list[Any], now: float, *, width: int = 80) -> Table:
    """One line per run, as wide as the console; the task gets what the other columns leave.

    Below 100 columns the model column is left out (`show` and `runs --json` have it), so at 80
    the task keeps 26 columns even next to a `budget_exceeded` run of a million tokens.
    """
    with_model = width >= 100
    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 1), collapse_padding=True,
                  expand=True)
    table.add_column("run", no_wrap=True, min_width=12)
    table.add_column("status", no_wrap=True)
    table.add_column("steps", justify="right", no_wrap=True)
    table.add_column("tokens", justify="right", no_wrap=True)
    table.add_column("cost", justify="right", no_wrap=True)
    table.add_column("age", justify="right", no_wrap=True)
    if with_model:
        table.add_column("model", no_wrap=True, overflow="ellipsis", max_width=24)
    table.add_column("task", no_wrap=True, overflow="ellipsis", ratio=1)
    for r in records:
        cells: list[Any] = [safe(r.id), safe(r.state, _STATUS_STYLE.get(r.state, "")), str(r.steps),
                            _tokens(r.total_tokens), _cost(r.cost), _age(now - r.created)]
        if with_model:
            cells.append(safe(_model(r.model)))
        parent = r.meta.get("parent_run")
        task = safe(_one_line(r.task, 500))
        if isinstance(parent, str):  # a team member's run: say whose
            task = Text.assemble(safe(f"↳ {_one_line(str(r.meta.get('member') or 'member'), 40)} of "
                                      f"{_one_line(parent, 40)}: ", "magenta"), task)
        table.add_row(*cells, task)
    return table


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="The run's id, or a unique prefix of it.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the run's events as JSON lines.")] = False,
    store: StoreOption = None,
) -> None:
    """Show a recorded run the way the live view showed it."""
    with usage_errors():
        log = _open(store)
        record = log.get(run_id)
        if as_json:
            for data in log.raw_events(record.id):
                sys.stdout.write(json_line(data, default=repr) + "\n")
            return
        events = log.events(record.id)
    console = Console()
    console.print(Text.assemble(("run ", "bold"), safe(record.id), "  ",
                                safe(record.state, _STATUS_STYLE.get(record.state, "")),
                                f"  {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(record.created))}"
                                f"  cost {_cost(record.cost)}", style="dim"))
    _show_events(console, log, record, events)
    if record.state == "running":
        console.print(Text("still running", style="cyan"))
    elif record.state != "success":
        console.print(safe(f"{record.state}" + (f": {record.error}" if record.error else ""), "yellow"))
        console.print(safe(f"continue it with `codeact resume {record.id}`", "dim"))


def _show_events(console: Console, log: Any, record: Any, events: list[Any], depth: int = 0) -> None:
    """The run's events as the live view shows them, each team member's run (a child run in the
    log) indented under the tool call that ran it, to `_MAX_DEPTH` levels."""
    from codeact.cli.view import LiveView
    from codeact.runs.events import ToolCalled

    children = log.children(record.id) if depth < _MAX_DEPTH else []
    if children:
        tokens = sum(c.total_tokens for c in children)
        names = ", ".join(sorted({_one_line(str(c.meta.get("member") or "?"), 40) for c in children}))
        console.print(safe(f"team: {len(children)} member run(s) ({names}), {tokens:,} tokens", "magenta"))
    view = LiveView(console, live=False)
    for event in events:
        view.show(event)
        if isinstance(event, ToolCalled):
            child = next((c for c in children if c.meta.get("parent_step") == event.step
                          and c.meta.get("member") == event.call.name), None)
            if child is not None:
                children.remove(child)
                _show_child(console, log, child, depth + 1)
    for child in children:  # a member whose call was not logged (the log's cap): still shown
        _show_child(console, log, child, depth + 1)


def _show_child(console: Console, log: Any, child: Any, depth: int) -> None:
    import io

    from rich.padding import Padding

    inner = Console(file=io.StringIO(), width=max(console.width - 4, 40), force_terminal=console.is_terminal,
                    color_system=console.color_system if console.is_terminal else None)  # type: ignore[arg-type]
    inner.print(Text.assemble(("run ", "bold"), safe(child.id), "  ",
                              safe(child.state, _STATUS_STYLE.get(child.state, "")),
                              safe(f"  member {_one_line(str(child.meta.get('member') or '?'), 40)}"), style="dim"))
    _show_events(inner, log, child, log.events(child.id), depth)
    text = inner.file.getvalue()  # type: ignore[attr-defined]
    if not console.is_terminal:  # plain text: no padding to the inner console's width
        text = "\n".join(line.rstrip() for line in text.splitlines())
    console.print(Padding(Text.from_ansi(text), (0, 0, 0, 4)))


_MAX_DEPTH = 4
"""Levels of member runs `show` nests (a member may lead a team of its own)."""


@app.command()
def resume(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="The run's id, or a unique prefix of it.")],
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model spec; default: the run's.")] = None,
    tools: ToolsOption = None,
    live_tools: Annotated[bool, typer.Option(help="Call the tools again while rebuilding the kernel's "
                                             "state, instead of serving their recorded results.")] = False,
    max_steps: Annotated[int | None, typer.Option(min=1, help="Step limit; default: the run's.")] = None,
    max_tokens: MaxTokensOption = None,
    max_seconds: MaxSecondsOption = None,
    max_cost: MaxCostOption = None,
    prices: PricesOption = None,
    timeout: Annotated[float | None, typer.Option(callback=positive, help="Seconds one code step may run.")] = None,
    sandbox: Annotated[str | None, typer.Option(callback=sandbox_name, help="default, local or process "
                                                "(no isolation); default: the run's.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole run as JSON on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live view on stderr.")] = False,
    store: StoreOption = None,
) -> None:
    """Continue a crashed or interrupted run from its last completed step.

    Budgets not given keep the run's. Exits like `codeact run`.
    """
    err = Console(stderr=True)
    with usage_errors(err):
        log = _open(store)
        record = log.get(run_id)
        budgets = {"max_tokens": max_tokens, "max_seconds": max_seconds, "max_cost": max_cost}
        agent = _agent_for(record, log, model=model, tool_specs=tools, max_steps=max_steps,
                           timeout=timeout, sandbox=sandbox, budgets=budgets, prices=prices)
    result, _ = consume(agent, agent.resume(record.id, stream=True, live_tools=live_tools), err,
                        quiet=quiet, run_id=record.id)
    print_result(result, run_id=record.id, as_json=as_json, err=err, quiet=quiet)


@app.command()
def replay(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="The run's id, or a unique prefix of it.")],
    tools: Annotated[list[str] | None, typer.Option("--tool", "-t", help="Call this real tool and "
                                                       "compare its results with the recording; "
                                                       "repeatable. Without it, results come from the log.")] = None,
    timeout: Annotated[float | None, typer.Option(callback=positive, help="Seconds one code step may run.")] = None,
    sandbox: Annotated[str | None, typer.Option(callback=sandbox_name, help="default, local or process "
                                                "(no isolation); default: the run's.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    store: StoreOption = None,
) -> None:
    """Re-run a recorded run with its recorded model replies and report the first divergence.

    Exits 0 when every observation matches the recording, 1 when one diverges.
    """
    from codeact.agent.code_agent import replay_run
    from codeact.cli._loading import load_tool

    err = Console(stderr=True)
    with usage_errors(err):
        log = _open(store)
        record = log.get(run_id)
        options = _sandbox_options(record.meta, timeout, sandbox)
        live = [load_tool(spec) for spec in tools] if tools else None
        report = replay_run(record.id, store=log, live_tools=live, **options)
    if as_json:
        sys.stdout.write(json_line({
            "run_id": report.run_id, "ok": report.ok, "status": report.result.status,
            "steps": len(report.result.steps),
            "divergences": [d.__dict__ for d in report.divergences],
        }, default=repr) + "\n")
    elif report.ok:
        err.print(safe(f"run {report.run_id}: {len(report.result.steps)} steps replayed, no divergence "
                       f"({report.result.status})", "green"))
    else:
        first = report.divergences[0]
        more = len(report.divergences) - 1
        err.print(safe(f"run {report.run_id} diverges at step {first.step} ({first.what})", "bold red"))
        err.print(Text("recorded:", style="bold"), safe(first.expected))
        err.print(Text("replayed:", style="bold"), safe(first.actual))
        if more:
            err.print(Text(f"... and {more} more difference(s) after it", style="dim"))
    if not report.ok:
        raise typer.Exit(1)


# -- helpers --------------------------------------------------------------------------------------
_STATUS_STYLE = {"success": "green", "running": "cyan", "crashed": "bold red", "error": "red",
                 "model_error": "red", "interrupted": "yellow", "max_steps": "yellow",
                 "budget_exceeded": "yellow"}


def _open(store: str | None) -> Any:
    from codeact.runs.store import RunStore

    return RunStore(store)


def _approvals_for(agent: Any, meta: Any) -> None:
    """A resumed run asks in the terminal like `codeact run`, for the tools the run marked."""
    from codeact.cli._approval import approver_for
    from codeact.tools.approval import require_approval

    marked = [name for name in meta.get("needs_approval") or [] if name in agent.tools]
    if marked:
        require_approval(agent.tools.values(), *marked)
    agent.approver = approver_for("ask", Console(stderr=True))


def _agent_for(record: Any, log: Any, *, model: str | None, tool_specs: list[str] | None,
               max_steps: int | None, timeout: float | None, sandbox: str | None,
               budgets: dict[str, float | None] | None = None, prices: str | None = None) -> Any:
    """A CodeAgent like the one that made the run: CLI options kept with the run fill the gaps."""
    from codeact.agent.code_agent import CodeAgent
    from codeact.cli._loading import load_tool, split_list
    from codeact.models.registry import resolve_model
    from codeact.runs.pricing import load_prices

    if record.agent != CodeAgent.kind:
        raise ConfigError(f"run {record.id} was made by a {record.agent!r} agent; resume it from Python "
                          "with that agent's resume()")
    meta = record.meta
    spec = model or meta.get("model_spec") or record.model
    reply_tokens = meta.get("max_reply_tokens")
    try:
        chosen = resolve_model(spec, **({"max_tokens": reply_tokens} if isinstance(reply_tokens, int) else {}))
    except ConfigError as exc:
        raise ConfigError(f"cannot rebuild the run's model from {spec!r} ({exc}); pass --model") from None
    specs = tool_specs if tool_specs is not None else list(meta.get("tool_specs") or [])
    loaded = [load_tool(s) for s in specs]
    if meta.get("mcp_servers"):  # `codeact run --mcp`: the servers, connected again from the run's record
        from codeact.tools.mcp import reopen_servers

        loaded += reopen_servers(meta["mcp_servers"], run_id=record.id)
    wanted = list(meta.get("tools") or {})
    missing = [name for name in wanted if name not in {t.name for t in loaded}]
    if missing:
        raise ConfigError(f"run {record.id} used tools {', '.join(missing)}; pass them with --tool module:function")
    budget = {**(meta.get("budget") or {}), **{k: v for k, v in (budgets or {}).items() if v is not None}}
    imports = meta.get("imports")
    price_file = prices or meta.get("prices")
    agent = CodeAgent(
        chosen,
        loaded,
        authorized_imports=split_list(imports) if isinstance(imports, str) else imports,
        max_steps=max_steps or int(budget.get("max_steps") or 10),
        max_tokens=budget.get("max_tokens"),
        max_seconds=budget.get("max_seconds"),
        **({"max_cost": budget["max_cost"]} if budget.get("max_cost") else {}),
        prices=load_prices(price_file) if price_file else None,
        store=log,
        **_sandbox_options(meta, timeout, sandbox),
    )
    agent.run_meta = {k: v for k, v in meta.items() if k not in ("budget", "tools")}
    _approvals_for(agent, meta)
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
            "output": encode_value(r.output), "error": r.error, "parent_run": r.meta.get("parent_run")}


def _tokens(total: int) -> str:
    """Up to 6 characters: 999,999 then 1.2M."""
    return f"{total:,}" if total < 1_000_000 else f"{total / 1_000_000:.1f}M"


def _model(name: str) -> str:
    """The model's own name: `openai-compat:http://host/v1#qwen` reads `qwen`."""
    short = name.rpartition("#")[2] if "#" in name else name
    return short or name


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
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"

