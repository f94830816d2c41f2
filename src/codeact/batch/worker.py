"""One task, run (or resumed) by a worker: the code both engines share.

A task's run carries `{"batch": BATCH_ID, "batch_task": TASK_ID}` in its meta, which makes the
(batch, task) -> run mapping durable in the run log itself: a worker that picks up a task looks
for that run first and resumes it when it was cut short (its worker died), or reports it when it
already ended, so steps already paid for are never paid again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codeact.batch.config import AgentConfig
from codeact.batch.results import TaskResult
from codeact.bench.checkers import get_checker
from codeact.bench.tasks import Task, load_tools
from codeact.runs.events import to_jsonable
from codeact.runs.store import RunRecord, RunStore

__all__ = ["TaskRun", "crashed", "find_run", "run_task", "throttle"]


@dataclass(frozen=True)
class TaskRun:
    """What a worker hands back: the checked result (and, for Ray, where its record lies)."""

    result: TaskResult
    store: Path


def find_run(store: RunStore, batch_id: str, task_id: str) -> RunRecord | None:
    """The newest run of this task in this batch, if any."""
    for record in store.runs(limit=None):
        if record.meta.get("batch") == batch_id and record.meta.get("batch_task") == task_id:
            return record
    return None


def run_task(config: AgentConfig, task: Task, batch_id: str, store_path: Path,
             meta: dict[str, Any] | None = None, before_call: Callable[[], object] | None = None) -> TaskRun:
    """Run `task` (or resume its cut-short run) and check the answer.

    Args:
        meta: more facts for the run's meta (the Ray worker's name).
        before_call: called before each model call (a shared rate limit waits there).
    """
    started = time.monotonic()
    tools = list(load_tools(task.tools).values())
    with RunStore(store_path) as store:
        previous = find_run(store, batch_id, task.id)
    attempts = 1 + int(previous.meta.get("batch_attempts", 1)) if previous is not None else 1
    if previous is not None and previous.state != "crashed" and previous.status != "running":
        record = previous  # it ended (answered or not): nothing left to pay for
        attempts -= 1
    else:
        agent = config.build_agent(task.question, tools, store_path)
        if before_call is not None:
            throttle(agent.model, before_call)
        agent.run_meta.update({"batch": batch_id, "batch_task": task.id, "batch_attempts": attempts, **(meta or {})})
        try:
            if previous is not None:
                agent.resume(previous.id)
            else:
                agent.run(task.question)
        finally:
            agent.close()
        with RunStore(store_path) as store:
            found = find_run(store, batch_id, task.id)
        assert found is not None, "the agent logs every run"
        record = found
    return TaskRun(_checked(batch_id, task, record, attempts, time.monotonic() - started), store_path)


def _checked(batch_id: str, task: Task, record: RunRecord, attempts: int, seconds: float) -> TaskResult:
    answered = record.status == "success"
    try:
        solved = answered and bool(get_checker(task.checker_name)(record.output, task.answer))
    except Exception:  # noqa: BLE001 - a checker that chokes on an odd answer scores it wrong
        solved = False
    return TaskResult(
        batch_id=batch_id, task_id=task.id, run_id=record.id, status=record.status,
        output=to_jsonable(record.output), expected=task.answer, solved=solved, answered=answered, steps=record.steps,
        prompt_tokens=record.prompt_tokens, completion_tokens=record.completion_tokens,
        seconds=round(seconds, 3), attempts=attempts, error=record.error,
    )


def crashed(batch_id: str, task: Task, exc: BaseException) -> TaskResult:
    """The result of a task whose worker raised instead of finishing a run."""
    return TaskResult(batch_id=batch_id, task_id=task.id, run_id=None, status="crash", output=None,
                       expected=task.answer, solved=False, steps=0, prompt_tokens=0, completion_tokens=0,
                       seconds=0.0, error=f"{type(exc).__name__}: {exc}"[:2000])


def throttle(model: Any, before_call: Callable[[], object]) -> None:
    """Make `model` call `before_call` before each request (the agent's sync paths: complete, stream)."""
    complete, stream = model.complete, model.stream

    def throttled_complete(*args: Any, **kwargs: Any) -> Any:
        before_call()
        return complete(*args, **kwargs)

    def throttled_stream(*args: Any, **kwargs: Any) -> Any:
        before_call()
        return stream(*args, **kwargs)

    setattr(model, "complete", throttled_complete)  # noqa: B010 - on this instance only
    setattr(model, "stream", throttled_stream)  # noqa: B010
