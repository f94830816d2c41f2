"""The one result row of `codeact batch` and `codeact bench`, and the resumable file that holds them.

Each finished task is appended to `results.jsonl` as one line the moment it finishes, by the
driver alone. A rerun reads the file and skips every key already in it, so a crash or Ctrl-C
loses at most the tasks in flight (and a batch resumes those from their run record). A batch keys
rows by task id (its directory is one batch); a bench by (task set, model, agent, task id),
because one directory holds every agent config's results.

This module knows no tasks, agents or models: `codeact.bench` sits above it and writes the same
rows.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Hashable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["RESULTS_FILE", "BatchResult", "ResultKey", "ResultsFile", "TaskResult", "by_task_id"]

RESULTS_FILE = "results.jsonl"

ResultKey = Callable[["TaskResult"], Hashable]
"""What makes two rows the same task for resuming."""


@dataclass(frozen=True)
class TaskResult:
    """One task, run and checked: one line of `results.jsonl`.

    A batch fills `batch_id` and `attempts`; a bench fills `taskset`, `model`, `agent` and the
    failure details (`error_kind`, `step_errors`, `model_timeouts`). Rows written before the two
    were one load with the fields they lack at their defaults.
    """

    task_id: str
    status: str
    output: Any
    expected: Any
    solved: bool
    steps: int
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    run_id: str | None = None
    """codeact's run in the run log (`codeact export --solved-in` keeps the solved ones)."""
    answered: bool = False
    """A final answer was given (a number that merely appeared in printed output is no answer)."""
    error: str | None = None
    batch_id: str = ""
    attempts: int = 1
    """Runs of the agent it took: more than 1 when a worker died and the run was resumed."""
    taskset: str = ""
    model: str = ""
    agent: str = ""
    error_kind: str | None = None
    """Why an unsolved task failed: wrong_answer, max_steps, model_error, model_timeout, crash:<Type>, ..."""
    step_errors: dict[str, int] = field(default_factory=dict)
    model_timeouts: int = 0
    """Model calls that timed out during this run, retried or not."""

    @property
    def key(self) -> tuple[str, str, str, str]:
        """A bench's key: the same task set, model, agent config and task."""
        return (self.taskset, self.model, self.agent, self.task_id)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, default=repr)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskResult:
        if not isinstance(data, dict):
            raise TypeError(f"a result row is a JSON object, not {type(data).__name__}")
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})

    def same_outcome(self, other: TaskResult) -> bool:
        """Equal but for where and how long it ran: what two engines must agree on."""
        keys = ("task_id", "status", "output", "solved", "steps", "prompt_tokens", "completion_tokens")
        return all(getattr(self, k) == getattr(other, k) for k in keys)


BatchResult = TaskResult
"""The name `codeact.batch` has always used for the row."""


def by_task_id(result: TaskResult) -> Hashable:
    """A batch's key: its directory is one batch, so the task id alone."""
    return result.task_id


def _bench_key(result: TaskResult) -> Hashable:
    return result.key


class ResultsFile:
    """`results.jsonl`: append-only; torn or foreign lines are skipped on read.

    Args:
        key: what identifies a row when resuming (default: the bench's key).
    """

    def __init__(self, path: Path, *, key: ResultKey = _bench_key) -> None:
        self.path = path
        self.key = key
        self._lock = threading.Lock()

    def load(self) -> dict[Hashable, TaskResult]:
        done: dict[Hashable, TaskResult] = {}
        if not self.path.exists():
            return done
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                result = TaskResult.from_dict(json.loads(line))
            except (ValueError, TypeError):
                continue  # a line cut short by a crash: that task simply runs (resumes) again
            done[self.key(result)] = result
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
