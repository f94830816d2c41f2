"""The batch's output: one JSON line per finished task, appended the moment it finishes.

The driver is the only writer. A rerun reads the file and skips every task id already in it, so
a crash or Ctrl-C loses at most the tasks in flight (and those resume from their run record).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["BatchResult", "BatchResults"]


@dataclass(frozen=True)
class BatchResult:
    """One task of a batch, finished and checked."""

    batch_id: str
    task_id: str
    run_id: str | None
    status: str
    output: Any
    expected: Any
    solved: bool
    steps: int
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    attempts: int = 1
    """Runs of the agent it took: more than 1 when a worker died and the run was resumed."""
    error: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, default=repr)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchResult:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})

    def same_outcome(self, other: BatchResult) -> bool:
        """Equal but for where and how long it ran: what two engines must agree on."""
        keys = ("task_id", "status", "output", "solved", "steps", "prompt_tokens", "completion_tokens")
        return all(getattr(self, k) == getattr(other, k) for k in keys)


class BatchResults:
    """`results.jsonl`: append-only; torn or foreign lines are skipped on read."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, BatchResult]:
        done: dict[str, BatchResult] = {}
        if not self.path.exists():
            return done
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                result = BatchResult.from_dict(json.loads(line))
            except (ValueError, TypeError):
                continue  # a line cut short by a crash: that task runs (resumes) again
            done[result.task_id] = result
        return done

    def append(self, result: BatchResult) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+b") as f:
            if f.tell() > 0:
                f.seek(-1, 2)
                if f.read(1) != b"\n":  # a line torn by a crash: end it, keep ours whole
                    f.write(b"\n")
            f.write(result.to_json().encode("utf-8") + b"\n")
            f.flush()
