"""Running agent configs over tasks: in parallel, checked, appended to a JSONL file, resumable.

Each finished (agent, task) is appended to `results.jsonl` as one line the moment it finishes,
so a crash or Ctrl-C loses at most the tasks in flight; running the same command again skips
every (task set, model, agent, task) already in the file.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from codeact.bench.agents import get_agent_config
from codeact.bench.checkers import get_checker
from codeact.bench.model import BenchModel
from codeact.bench.outcome import Outcome
from codeact.bench.tasks import Task, load_tools
from codeact.errors import ModelTimeoutError
from codeact.runs.events import to_jsonable

__all__ = ["RESULTS_FILE", "OnResult", "ResultsFile", "TaskResult", "run_bench"]

RESULTS_FILE = "results.jsonl"


@dataclass(frozen=True)
class TaskResult:
    """One agent config on one task, checked. One line of `results.jsonl`."""

    taskset: str
    model: str
    agent: str
    task_id: str
    solved: bool
    answered: bool
    status: str
    output: Any
    expected: Any
    steps: int
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    error_kind: str | None = None
    """Why an unsolved task failed: wrong_answer, max_steps, model_error, model_timeout, crash:<Type>, ..."""
    error: str | None = None
    step_errors: dict[str, int] = field(default_factory=dict)
    model_timeouts: int = 0
    """Model calls that timed out during this run, retried or not."""
    run_id: str | None = None
    """codeact's run in the bench's run log, for `codeact export --solved-in`."""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.taskset, self.model, self.agent, self.task_id)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, default=repr)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskResult:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})


class ResultsFile:
    """The append-only JSONL of results; torn or foreign lines are skipped on read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def load(self) -> dict[tuple[str, str, str, str], TaskResult]:
        done: dict[tuple[str, str, str, str], TaskResult] = {}
        if not self.path.exists():
            return done
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                result = TaskResult.from_dict(json.loads(line))
            except (ValueError, TypeError):
                continue  # a line cut short by a crash: that task simply runs again
            done[result.key] = result
        return done

    def append(self, result: TaskResult) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a+b") as f:
                if f.tell() > 0:
                    f.seek(-1, 2)
                    if f.read(1) != b"\n":  # a line torn by a crash: end it, keep ours whole
                        f.write(b"\n")
                f.write(result.to_json().encode("utf-8") + b"\n")
                f.flush()


OnResult = Callable[[TaskResult, bool], None]
"""Called with each result and whether it came from an earlier run (resumed)."""


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
    results_file = ResultsFile(out_dir / RESULTS_FILE)
    done = results_file.load()
    results: list[TaskResult] = []
    todo: list[tuple[str, Task]] = []
    for agent in agents:
        for task in tasks:
            previous = done.get((taskset, model.label, agent, task.id))
            if previous is not None:
                results.append(previous)
                if on_result is not None:
                    on_result(previous, True)
            else:
                todo.append((agent, task))

    stopping = threading.Event()

    def one(agent: str, task: Task) -> TaskResult | None:
        started = time.monotonic()
        crash: str | None = None
        model.count_timeouts()  # this thread's count starts at zero
        try:
            outcome = runners[agent](task, tools_by_spec[task.tools], model, max_steps)
        except Exception as exc:  # noqa: BLE001 - one broken run must not end the benchmark
            outcome = Outcome(None, False, "crash", 0, 0, 0, f"{type(exc).__name__}: {exc}")
            crash = f"crash:{type(exc).__name__}"
        timeouts = model.count_timeouts() + int(_ended_by_timeout(outcome))
        outcome = replace(outcome, model_timeouts=outcome.model_timeouts + timeouts)
        result = _checked(taskset, model.label, agent, task, outcome, checkers[task.checker_name],
                          time.monotonic() - started, crash)
        if stopping.is_set():
            return None
        results_file.append(result)
        return result

    pool = ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="codeact-bench")
    pending: set[Future[TaskResult | None]] = set()
    queue = iter(todo)
    try:
        for agent, task in _take(queue, max(1, concurrency)):
            pending.add(pool.submit(one, agent, task))
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                result = future.result()
                if result is None:
                    continue
                results.append(result)
                if on_result is not None:
                    on_result(result, False)
            for agent, task in _take(queue, len(finished)):
                pending.add(pool.submit(one, agent, task))
    except BaseException:
        # Ctrl-C: runs still in flight finish in the background but are not recorded, so a
        # rerun does them again instead of keeping a result cut short by the interruption.
        stopping.set()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results


def _ended_by_timeout(outcome: Outcome) -> bool:
    """The run ended because a model call timed out (codeact records errors as "Type: message")."""
    return outcome.status == "model_error" and (outcome.error or "").startswith(f"{ModelTimeoutError.__name__}:")


def _take(queue: Iterable[tuple[str, Task]], n: int) -> list[tuple[str, Task]]:
    """Submit lazily, so Ctrl-C does not leave a long queue of submitted work behind."""
    items = []
    for item in queue:
        items.append(item)
        if len(items) >= n:
            break
    return items


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
