"""Everything that happens in a run, as immutable events.

The loop yields these; the CLI's live view, streaming callers, the run log, replay and
telemetry all read the same records. Each event has a `kind` tag and converts to a plain dict.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from codeact.models.base import Usage
from codeact.sandbox.base import ToolCallRecord

__all__ = [
    "ActionParsed",
    "Event",
    "ModelReplied",
    "Observed",
    "RunFinished",
    "RunStarted",
    "RunStatus",
    "Step",
    "StepFinished",
    "ToolCalled",
    "event_to_dict",
]

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
class Event:
    kind: ClassVar[str] = "event"


@dataclass(frozen=True)
class RunStarted(Event):
    kind: ClassVar[str] = "run_started"
    task: str
    agent: str
    model: str
    tools: tuple[str, ...]
    max_steps: int


@dataclass(frozen=True)
class ModelReplied(Event):
    kind: ClassVar[str] = "model_replied"
    step: int
    text: str
    usage: Usage
    seconds: float
    tool_calls: tuple[Any, ...] = ()


@dataclass(frozen=True)
class ActionParsed(Event):
    kind: ClassVar[str] = "action_parsed"
    step: int
    thought: str
    code: str | None
    """None when the reply held no action; `note` then says why."""
    note: str = ""


@dataclass(frozen=True)
class ToolCalled(Event):
    kind: ClassVar[str] = "tool_called"
    step: int
    call: ToolCallRecord


@dataclass(frozen=True)
class Observed(Event):
    kind: ClassVar[str] = "observed"
    step: int
    observation: str
    seconds: float
    error: str | None = None


@dataclass(frozen=True)
class StepFinished(Event):
    kind: ClassVar[str] = "step_finished"
    step: Step


@dataclass(frozen=True)
class RunFinished(Event):
    kind: ClassVar[str] = "run_finished"
    status: RunStatus
    output: Any
    usage: Usage
    steps: int
    seconds: float
    error: str | None = None
    result: Any = field(default=None, repr=False, compare=False)
    """The RunResult, for callers that consume a stream."""


def event_to_dict(event: Event) -> dict[str, Any]:
    """A JSON-ready dict with the `kind` tag; non-JSON values become their repr."""
    data = {f.name: _plain(getattr(event, f.name)) for f in dataclasses.fields(event) if f.name != "result"}
    return {"kind": event.kind, **data}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)
