"""What a finished run hands back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from codeact.models.base import Usage
from codeact.runs.events import RunStatus, Step

__all__ = ["RunResult"]


@dataclass(frozen=True)
class RunResult:
    """The outcome of `agent.run(task)`.

    `output` is the value passed to `final_answer`; when the run ended without one (step
    limit, budget, model failure) it holds whatever partial answer exists, and `status` and
    `error` say why.
    """

    output: Any
    status: RunStatus
    steps: tuple[Step, ...]
    usage: Usage
    seconds: float
    error: str | None = None
    run_id: str | None = None

    @property
    def success(self) -> bool:
        return self.status == "success"

    @property
    def usage_per_step(self) -> list[Usage]:
        return [s.usage for s in self.steps]
