"""`codeact batch TASKS`: one agent configuration over a task file, locally or on Ray.

The task file is the bench's (one JSON task a line); the results go to `--out/results.jsonl`
one line per finished task and every run to `--out/runs.db`, so the same command run again
skips what finished and resumes what was cut short.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from codeact.cli import app
from codeact.cli._options import print_error
from codeact.cli._text import safe
from codeact.errors import CodeactError, ConfigError

__all__ = ["batch"]


@app.command()
def batch(
    tasks: Annotated[str, typer.Argument(help="A JSONL task file (the bench's format) or a shipped task set.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model spec, e.g. openai-compat:URL#MODEL; "
                                       "'scripted' replays --reply texts (zero latency).")] = "local",
    reply: Annotated[list[str] | None, typer.Option("--reply", help="With --model scripted: the reply of "
                                                    "each step, in order ({question} is the task).")] = None,
    agent: Annotated[str | None, typer.Option("--agent", help="module:function returning an Agent, called "
                                              "with store=PATH in each worker (instead of --model).")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-j", help="Tasks at once (workers).")] = 2,
    max_steps: Annotated[int, typer.Option(help="Step cap per task.")] = 10,
    max_seconds: Annotated[float | None, typer.Option(help="Wall-time cap per task.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Token budget per task.")] = None,
    max_cost: Annotated[float | None, typer.Option(help="Cost budget per task (USD).")] = None,
    sandbox: Annotated[str, typer.Option(help="default, local or process.")] = "default",
    limit: Annotated[int | None, typer.Option(help="Run only the first N tasks.")] = None,
    out: Annotated[Path | None, typer.Option(help="Batch directory (default batch-out/NAME); "
                                             "rerunning with it resumes.")] = None,
    ray: Annotated[bool, typer.Option("--ray", help="Run on a local Ray cluster.")] = False,
    ray_address: Annotated[str | None, typer.Option(help="Run on the Ray cluster at this address.")] = None,
    sandboxes_per_node: Annotated[int | None, typer.Option(help="Ray: most workers (sandbox owners) "
                                                           "per node.")] = None,
    requests_per_second: Annotated[float | None, typer.Option("--rps", help="Ray: one request rate for "
                                                              "the model endpoint, cluster-wide.")] = None,
    allow_task_code: Annotated[bool, typer.Option("--allow-task-code", help="Let the task file's 'tools' "
                                                  "and 'checker' name Python code to run.")] = False,
) -> None:
    """Run an agent over every task of TASKS: a progress bar on stderr, a summary on stdout."""
    err = Console(stderr=True)
    try:
        _run(err, tasks=tasks, model=model, reply=reply or [], agent=agent, concurrency=concurrency,
             max_steps=max_steps, max_seconds=max_seconds, max_tokens=max_tokens, max_cost=max_cost,
             sandbox=sandbox, limit=limit, out=out, ray=ray, ray_address=ray_address,
             sandboxes_per_node=sandboxes_per_node, requests_per_second=requests_per_second,
             allow_task_code=allow_task_code)
    except CodeactError as exc:
        print_error(err, exc)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err.print("[yellow]interrupted:[/] finished tasks are saved; run the same command again to resume.")
        raise typer.Exit(130) from None


def _run(err: Console, *, tasks: str, model: str, reply: list[str], agent: str | None, concurrency: int,
         max_steps: int, max_seconds: float | None, max_tokens: int | None, max_cost: float | None,
         sandbox: str, limit: int | None, out: Path | None, ray: bool, ray_address: str | None,
         sandboxes_per_node: int | None, requests_per_second: float | None, allow_task_code: bool) -> None:
    from codeact.batch import AgentConfig, run_batch
    from codeact.bench.tasks import load_taskset, select_tasks

    if concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    if reply and model != "scripted":
        raise ConfigError("--reply goes with --model scripted")
    loaded = load_taskset(tasks, allow_code=allow_task_code)
    chosen = select_tasks(loaded.tasks, limit=limit)
    config = AgentConfig(model=model, replies=tuple(reply), factory=agent, max_steps=max_steps,
                         max_seconds=max_seconds, max_tokens=max_tokens, max_cost=max_cost, sandbox=sandbox)
    out_dir = out or Path("batch-out") / loaded.name
    progress = Progress(TextColumn("batch"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("[green]{task.fields[solved]} solved"), TextColumn("{task.fields[note]}"),
                        TimeElapsedColumn(), console=err)
    row = progress.add_task("batch", total=len(chosen), solved=0, note="")
    counts = [0, 0]  # solved, from an earlier invocation

    def on_result(result: Any, resumed: bool) -> None:
        counts[0] += int(result.solved)
        counts[1] += int(resumed)
        progress.update(row, advance=1, solved=counts[0], note=f"({counts[1]} done earlier)" if counts[1] else "")

    with progress:
        results = run_batch(chosen, config, out=out_dir, concurrency=concurrency, ray=ray, ray_address=ray_address,
                            sandboxes_per_node=sandboxes_per_node, requests_per_second=requests_per_second,
                            on_result=on_result)
    statuses: dict[str, int] = {}
    for result in results:
        statuses[result.status] = statuses.get(result.status, 0) + 1
    typer.echo(f"{len(results)} tasks: {sum(r.solved for r in results)} solved; "
               + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())))
    err.print(safe(f"results: {out_dir / 'results.jsonl'}; runs: {out_dir / 'runs.db'}"))
