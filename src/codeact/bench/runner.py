"""Running agent configs over tasks on the batch engine: in parallel, checked, resumable.

Each finished (agent, task) is appended to `results.jsonl` as one line the moment it finishes
(`codeact.batch.results`, the same rows `codeact batch` writes), so a crash or Ctrl-C loses at
most the tasks in flight; running the same command again skips every (task set, model, agent,
task) already in the file.

The work runs on the batch engine's pool (`codeact.batch.pool`) with threads, one per
`concurrency`: every config shares one `BenchModel`, whose in-process model loads its weights
once and whose served model's hooks (`settle`, `count_prompt`) live in this process.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from codeact.batch.pool import Finished, OnResult, run_pool, run_resumable
from codeact.batch.results import RESULTS_FILE, ResultsFile, TaskResult
from codeact.bench.agents import get_agent_config
from codeact.bench.checkers import get_checker
from codeact.bench.model import BenchModel
from codeact.bench.outcome import Outcome
from codeact.bench.tasks import Task, load_tools
from codeact.errors import ModelTimeoutError
from codeact.runs.events import to_jsonable

__all__ = ["run_bench"]


def run_bench(
    taskset: str,
    tasks: Sequence[Task],
    agents: Sequence[str],
    model: BenchModel,
    *,
    out_dir: Path,
    max_steps: int = 10,
    concurrency: int = 1,
    on_result: OnResult | None = None,
) -> list[TaskResult]:
    """Run every agent config on every task (skipping those already in `out_dir`); return all results.

    Work is ordered agent by agent so a local server's prompt cache keeps one system prompt warm.
    """
    runners = {name: get_agent_config(name) for name in agents}  # unknown names fail before any work
    tools_by_spec = {spec: load_tools(spec) for spec in {t.tools for t in tasks}}
    checkers = {name: get_checker(name) for name in {t.checker_name for t in tasks}}

    def one(item: tuple[str, Task]) -> TaskResult:
        agent, task = item
        started = time.monotonic()
        crash: str | None = None
        model.count_timeouts()  # this thread's count starts at zero
        try:
            outcome = runners[agent](task, tools_by_spec[task.tools], model, max_steps)
        except Exception as exc:  # noqa: BLE001 - one broken run must not end the benchmark
            outcome = _crash(exc)
            crash = f"crash:{type(exc).__name__}"
        timeouts = model.count_timeouts() + int(_ended_by_timeout(outcome))
        outcome = replace(outcome, model_timeouts=outcome.model_timeouts + timeouts)
        return _checked(taskset, model.label, agent, task, outcome, checkers[task.checker_name],
                        time.monotonic() - started, crash)

    def crashed(item: tuple[str, Task], exc: Exception) -> TaskResult:
        agent, task = item
        return _checked(taskset, model.label, agent, task, _crash(exc), checkers[task.checker_name], 0.0,
                        f"crash:{type(exc).__name__}")

    def execute(todo: Sequence[tuple[str, Task]], finished: Finished) -> None:
        for result in run_pool(todo, one, workers=concurrency, processes=False, crashed=crashed):
            finished(result)

    items = [(agent, task) for agent in agents for task in tasks]
    return run_resumable(items, key=functools.partial(_key, taskset, model.label), execute=execute,
                         results=ResultsFile(out_dir / RESULTS_FILE), on_result=on_result)


def _key(taskset: str, label: str, item: tuple[str, Task]) -> tuple[str, str, str, str]:
    return (taskset, label, item[0], item[1].id)


def _crash(exc: BaseException) -> Outcome:
    return Outcome(None, False, "crash", 0, 0, 0, f"{type(exc).__name__}: {exc}")


def _ended_by_timeout(outcome: Outcome) -> bool:
    """The run ended because a model call timed out (codeact records errors as "Type: message")."""
    return outcome.status == "model_error" and (outcome.error or "").startswith(f"{ModelTimeoutError.__name__}:")


def _checked(taskset: str, model: str, agent: str, task: Task, outcome: Outcome,
             check: Callable[[Any, Any], bool], seconds: float, crash: str | None) -> TaskResult:
    try:
        correct = outcome.answered and bool(check(outcome.output, task.answer))
    except Exception:  # noqa: BLE001 - a checker that chokes on an odd answer scores it wrong
        correct = False
    if correct:
        kind = None
    elif crash:
        kind = crash
    elif outcome.answered:
        kind = "wrong_answer"
    elif _ended_by_timeout(outcome):
        kind = "model_timeout"
    else:
        kind = outcome.status if outcome.status != "success" else "no_answer"
    step_errors: dict[str, int] = {}
    for error in outcome.step_errors:
        step_errors[error] = step_errors.get(error, 0) + 1
    return TaskResult(
        taskset=taskset,
        model=model,
        agent=agent,
        task_id=task.id,
        solved=correct,
        answered=outcome.answered,
        status=outcome.status,
        output=to_jsonable(outcome.output),
        expected=task.answer,
        steps=outcome.steps,
        prompt_tokens=outcome.prompt_tokens,
        completion_tokens=outcome.completion_tokens,
        seconds=round(seconds, 3),
        error_kind=kind,
        error=outcome.error,
        step_errors=step_errors,
        model_timeouts=outcome.model_timeouts,
        run_id=outcome.run_id,
    )
