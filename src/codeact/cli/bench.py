"""`codeact bench TASKSET`: run agent configs on a task set and write a report.

SIGTERM and SIGHUP end a bench the way Ctrl-C does (finished tasks are kept, the served model is
stopped): without a handler they kill the process before any cleanup runs.
"""

from __future__ import annotations

import re
import shlex
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from codeact.cli import app
from codeact.cli._options import print_error
from codeact.cli._text import safe
from codeact.errors import CodeactError, ConfigError

__all__ = ["bench"]

_SIZE = re.compile(r"\d+(?:\.\d+)?b", re.IGNORECASE)
_PEERS = ("smolagents-code", "smolagents-json")
#: Named in --help without importing the bench at start-up; tests/cli/test_bench.py pins them to
#: the shipped files and the registered configs.
TASKSETS = ("gsm8k", "shop", "travel", "records", "office", "toolbox", "toolbox_code_mode")
AGENTS = ("codeact-code", "codeact-json", "codeact-json-native", "codeact-json+answeralone", "codeact-code-plan",
          "codeact-team", "no-agent", *_PEERS)
#: The suffixes of `codeact-code+...` (bench.variants.VARIANTS).
TECHNIQUE_CONFIGS = ("repeatguard", "repeatguard+hot", "repeatguard+look", "verify", "tooluse", "errorcontext",
                     "errorcontext+giveup", "toolsfirst", "toolexample", "compact", "units", "exampleonly", "compact+repeatguard",
                     "all", "bundle", "vote3", "multiblock")


@app.command(context_settings={"allow_extra_args": True})
def bench(
    ctx: typer.Context,
    taskset: Annotated[str, typer.Argument(help=f"A shipped task set ({', '.join(TASKSETS)}) or a JSONL file.")],
    agents: Annotated[str, typer.Option(help=f"Comma-separated agent configs: {', '.join(AGENTS)}, and the "
                                        f"code agent with techniques on: codeact-code+{', +'.join(TECHNIQUE_CONFIGS)} "
                                        "(README: Benchmarks).")
                      ] = "codeact-code,codeact-json",
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model spec every config uses, e.g. "
                                                 "openai-compat:URL#MODEL. Default: --serve-local.")] = None,
    serve_local: Annotated[bool, typer.Option("--serve-local", help="Serve the embedded model with "
                                              "llama-cpp-python's OpenAI server and point every config "
                                              "at it; add the size after it: --serve-local 0.5b "
                                              "(default 1.5b).")] = False,
    limit: Annotated[int | None, typer.Option(help="Run only this many tasks.")] = None,
    seed: Annotated[int | None, typer.Option(help="Sample tasks at random with this seed "
                                                "(default: file order).")] = None,
    concurrency: Annotated[int, typer.Option(help="Tasks run at the same time.")] = 1,
    max_steps: Annotated[int, typer.Option(help="Step limit, the same for every config.")] = 10,
    out: Annotated[Path | None, typer.Option(help="Results directory (default bench-out/TASKSET). "
                                                "Rerunning with the same directory resumes.")] = None,
    sandbox: Annotated[str, typer.Option(help="Sandbox for code configs: default or process.")] = "default",
    threads: Annotated[int | None, typer.Option(help="CPU threads for --serve-local (default: all cores; "
                                                   "on a busy machine 1 can be several times faster).")] = None,
    max_reply_tokens: Annotated[int, typer.Option(help="Cap on the tokens of every model reply, the same for "
                                                  "every config (codeact's and the peers').")
                                ] = 1024,
    allow_task_code: Annotated[bool, typer.Option("--allow-task-code", help="Let a task file's 'tools' and "
                                                  "'checker' name Python code (module:function) to import "
                                                  "and run. Only for task files you trust.")] = False,
) -> None:
    """Benchmark agent configs on TASKSET with one model: a Markdown table on stdout, report files in --out."""
    err = Console(stderr=True)
    try:
        with _signals_interrupt():
            taskset, size = _positionals(taskset, list(ctx.args), serve_local)
            _run(err, taskset=taskset, agents=agents, model=model, size=size, limit=limit, seed=seed,
                 concurrency=concurrency, max_steps=max_steps, out=out, sandbox=sandbox, threads=threads,
                 max_reply_tokens=max_reply_tokens, allow_task_code=allow_task_code)
    except CodeactError as exc:
        print_error(err, exc)
        raise typer.Exit(2) from None
    except _Signalled as exc:
        err.print(f"[yellow]stopped by {signal.Signals(exc.signum).name}:[/] finished tasks are saved; "
                  "run the same command again to resume.")
        raise typer.Exit(128 + exc.signum) from None
    except KeyboardInterrupt:
        err.print("[yellow]interrupted:[/] finished tasks are saved; run the same command again to resume.")
        raise typer.Exit(130) from None


class _Signalled(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread so that the same cleanup as Ctrl-C runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextmanager
def _signals_interrupt() -> Iterator[None]:
    def raise_signalled(signum: int, frame: FrameType | None) -> None:
        raise _Signalled(signum)

    previous = {sig: signal.signal(sig, raise_signalled) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _positionals(taskset: str, extra: list[str], serve_local: bool) -> tuple[str, str | None]:
    """The task set and the served model size: `--serve-local 0.5b` leaves "0.5b" as a positional."""
    words = [taskset, *extra]
    sizes = [w for w in words if _SIZE.fullmatch(w)]
    rest = [w for w in words if not _SIZE.fullmatch(w)]
    if len(rest) != 1:
        raise ConfigError(f"expected one TASKSET, got {rest or 'none'}")
    if sizes and not serve_local:
        raise ConfigError(f"a model size ({sizes[0]}) only goes after --serve-local")
    if len(sizes) > 1:
        raise ConfigError(f"give one model size after --serve-local, got {sizes}")
    size = sizes[0].lower() if sizes else ("1.5b" if serve_local else None)
    return rest[0], size


def _run(err: Console, *, taskset: str, agents: str, model: str | None, size: str | None, limit: int | None,
         seed: int | None, concurrency: int, max_steps: int, out: Path | None, sandbox: str,
         threads: int | None, max_reply_tokens: int = 1024, allow_task_code: bool = False) -> None:
    from codeact.bench.agents import get_agent_config
    from codeact.bench.local_server import LocalServer
    from codeact.bench.model import BenchModel
    from codeact.bench.report import render_markdown, summarize, write_report
    from codeact.bench.runner import run_bench
    from codeact.bench.tasks import load_taskset, select_tasks

    names = [a.strip() for a in agents.split(",") if a.strip()]
    if not names:
        raise ConfigError("--agents is empty")
    for name in names:
        get_agent_config(name)
    if model is not None and size is not None:
        raise ConfigError("use either --model or --serve-local, not both")
    if model is None and size is None:
        size = "1.5b"
    if max_steps < 1 or concurrency < 1 or (threads is not None and threads < 1) or max_reply_tokens < 1:
        raise ConfigError("--max-steps, --concurrency, --threads and --max-reply-tokens must be at least 1")
    if threads is not None and size is None:
        raise ConfigError("--threads sets the threads of --serve-local's server")
    loaded = load_taskset(taskset, allow_code=allow_task_code)
    tasks = select_tasks(loaded.tasks, limit=limit, seed=seed)
    out_dir = out or Path("bench-out") / loaded.name
    if any(n in _PEERS for n in names):
        from codeact._optional import require

        require("smolagents", extra="bench-peers", feature="The smolagents configs")

    started = time.monotonic()
    with ExitStack() as stack:
        if size is not None:
            server = LocalServer(size, n_threads=threads, log_path=out_dir / "server.log")
            err.print(safe(f"starting llama.cpp server for the {size} model on {server.url} ..."))
            stack.enter_context(server)
            bench_model = BenchModel(server.model_spec, label=f"local-{size} (llama-cpp-python server)",
                                     sandbox=sandbox, run_log=out_dir / "runs.db", max_tokens=max_reply_tokens,
                                     settle=server.settle, options={"count_prompt": server.count_prompt})
        else:
            assert model is not None
            bench_model = BenchModel(model, sandbox=sandbox, run_log=out_dir / "runs.db",
                                     max_tokens=max_reply_tokens)
        stack.callback(bench_model.close)
        if any(n in _PEERS for n in names):
            bench_model.openai_endpoint()  # fail now, not once per task
        results = _with_progress(err, names, len(tasks), lambda on_result: run_bench(
            loaded.name, tasks, names, bench_model, out_dir=out_dir, max_steps=max_steps,
            concurrency=concurrency, on_result=on_result))

    summaries = summarize(results, names)
    meta: dict[str, Any] = {
        "taskset": loaded.name, "model": bench_model.label, "server_threads": threads, "tasks": len(tasks),
        "max_steps": max_steps, "max_reply_tokens": max_reply_tokens,
        "agents": names, "limit": limit, "seed": seed, "concurrency": concurrency,
        "command": "codeact " + shlex.join(sys.argv[1:]), "wall_seconds_this_invocation":
        round(time.monotonic() - started, 1), "versions": _versions(names),
    }
    md, js = write_report(out_dir, summaries, meta)
    sys.stdout.write(render_markdown(summaries))
    err.print(safe(f"report: {md} and {js}; per-task results: {out_dir / 'results.jsonl'}; "
                   f"codeact runs: {out_dir / 'runs.db'}"))


def _with_progress(err: Console, names: list[str], total: int, run: Any) -> Any:
    progress = Progress(
        TextColumn("{task.description:<20}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("[green]{task.fields[solved]} solved"), TextColumn("{task.fields[resumed]}"),
        TimeElapsedColumn(), console=err,
    )
    rows: dict[str, TaskID] = {n: progress.add_task(n, total=total, solved=0, resumed="") for n in names}
    counts = {n: [0, 0] for n in names}  # solved, resumed

    def on_result(result: Any, resumed: bool) -> None:
        solved_resumed = counts[result.agent]
        solved_resumed[0] += int(result.solved)
        solved_resumed[1] += int(resumed)
        note = f"({solved_resumed[1]} from earlier run)" if solved_resumed[1] else ""
        progress.update(rows[result.agent], advance=1, solved=solved_resumed[0], resumed=note)

    with progress:
        return run(on_result)


def _versions(names: list[str]) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    packages = ["codeact", "llama_cpp_python"] + (["smolagents"] if any(n in _PEERS for n in names) else [])
    found = {}
    for package in packages:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found
