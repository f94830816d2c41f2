"""What a run produced: its steps and its outcome, as plain records.

They sit below the events (which carry them) and the agent (which builds them), so the run log
and its readers can type them without importing the agent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from codeact.models.base import Message, Usage
from codeact.models.images import Image
from codeact.sandbox.base import ToolCallRecord

__all__ = ["FileChange", "RunResult", "RunStatus", "Step"]

RunStatus = Literal["success", "max_steps", "budget_exceeded", "model_error", "interrupted"]


@dataclass(frozen=True)
class Step:
    """One complete step: model reply, the action taken, and what came back."""

    index: int
    thought: str
    code: str | None
    observation: str
    usage: Usage = Usage()
    model_seconds: float = 0.0
    exec_seconds: float = 0.0
    tool_calls: tuple[ToolCallRecord, ...] = ()
    is_final: bool = False
    error: str | None = None
    """Kind of failure in this step, if any: "no_code", an exception type, "timeout", "kernel_lost"."""
    reply: str = ""


@dataclass(frozen=True)
class FileChange:
    """A file the run created, changed or deleted in its workspace."""

    path: str
    """Relative to the workspace, with "/" between parts (a name the model's code chose: data)."""
    change: Literal["created", "changed", "deleted"]
    size: int
    """Bytes (0 for a deleted file)."""
    type: str
    """The MIME type its extension suggests ("application/octet-stream" when it suggests none)."""


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
    files: tuple[FileChange, ...] = ()
    """What the run created, changed or deleted in its workspace (CodeAgent; see FilesChanged)."""
    images: tuple[Image, ...] = field(default=(), repr=False, compare=False)
    """Images the run's steps showed (`display()`, tools' image results), in order; each has
    `describe()`, `data` (the encoded bytes) and `mime`. See ImagesShown."""
    messages: tuple[Message, ...] = field(default=(), repr=False, compare=False)
    """The whole conversation, uncompacted: system prompt, task, every reply and observation.
    A follow-up turn (`run(task, reset=False)`, `agent.chat()`) starts from it."""

    @property
    def success(self) -> bool:
        return self.status == "success"

    @property
    def usage_per_step(self) -> list[Usage]:
        return [s.usage for s in self.steps]
