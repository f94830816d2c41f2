"""Everything that happens in a run, as immutable events.

The loop yields these; the CLI's live view, streaming callers, the run log, replay and
telemetry all read the same records. Each event has a `kind` tag and converts to a plain dict.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from codeact.models.base import Message, Usage
from codeact.models.images import Image
from codeact.runs.result import FileChange, RunResult, RunStatus, Step
from codeact.sandbox.base import Execution, ToolCallRecord

__all__ = [
    "ActionParsed",
    "ApprovalDecided",
    "ApprovalRequested",
    "BudgetHit",
    "Event",
    "FilesChanged",
    "ImagesShown",
    "LogNote",
    "ModelDelta",
    "ModelReplied",
    "ModelRequested",
    "Observed",
    "PlanUpdated",
    "RunFinished",
    "RunResumed",
    "RunStarted",
    "RunStatus",
    "Step",
    "StepFinished",
    "ToolCalled",
    "event_to_dict",
    "to_jsonable",
]

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
    run_id: str | None = None
    """The run's id in the run log, when one is kept."""


@dataclass(frozen=True)
class ModelRequested(Event):
    """What was sent to the model, as a delta: the first `keep` messages of the previous request
    are unchanged and `messages` follow them. Written to the run log (not yielded by the loop), so
    the log holds every prompt without growing quadratically."""

    kind: ClassVar[str] = "model_requested"
    step: int
    keep: int
    messages: tuple[Message, ...]


@dataclass(frozen=True)
class ModelDelta(Event):
    """A piece of the model's reply as it streams in, for live views and `run(stream=True)`.

    Only a live model call that streams produces these (never a reply served from the log), and
    they are not written to the run log: the ModelReplied that follows holds the whole text.
    """

    kind: ClassVar[str] = "model_delta"
    step: int
    text: str
    """The new chunk only."""
    tokens: int
    """Chunks received so far in this reply (a chunk is about one token for most backends)."""


@dataclass(frozen=True)
class ModelReplied(Event):
    kind: ClassVar[str] = "model_replied"
    step: int
    text: str
    usage: Usage
    seconds: float
    tool_calls: tuple[Any, ...] = ()
    finish_reason: str | None = None


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
class ApprovalRequested(Event):
    """A tool call from the code waits for approval (see `codeact.tools.approval`).

    Written to the log (and committed) when asked, while the code waits; a reader of the log (a
    server) sees it at once. The stream shows it after the step's code ends."""

    kind: ClassVar[str] = "approval_requested"
    step: int
    request_id: str
    tool: str
    arguments: dict[str, Any]
    """As the approver saw them: bound by parameter name, a bounded preview when large."""
    reason: str = ""
    description: str = ""
    timeout_s: float | None = None


@dataclass(frozen=True)
class ApprovalDecided(Event):
    """The decision on an ApprovalRequested: the call runs ("approve", "edit") or raises
    PermissionError in the code ("deny", also when it timed out or an edit did not fit)."""

    kind: ClassVar[str] = "approval_decided"
    step: int
    request_id: str
    tool: str
    verdict: str
    """"approve", "deny" or "edit"."""
    message: str = ""
    arguments: dict[str, Any] | None = None
    """The edited arguments (for an edit, or an edit that did not fit and was denied)."""
    by: str = ""
    timed_out: bool = False
    seconds: float = 0.0
    """How long the decision took."""


@dataclass(frozen=True)
class Observed(Event):
    kind: ClassVar[str] = "observed"
    step: int
    observation: str
    seconds: float
    error: str | None = None
    execution: Execution | None = field(default=None, repr=False)
    """The complete result of the action, so resume can feed the loop exactly what it saw."""


@dataclass(frozen=True)
class ImagesShown(Event):
    """Images a step showed (the code's `display()`, a tool's image result), after its Observed.

    `shown` describes each one (`640x480 png, 12 KB`: safe to print); `images` holds them for a
    caller that consumes the stream. The log keeps `shown` here, and the images themselves in
    the Observed event's execution (bounded, see `runs.codec`)."""

    kind: ClassVar[str] = "images_shown"
    step: int
    shown: tuple[str, ...]
    images: tuple[Image, ...] = field(default=(), repr=False, compare=False)


@dataclass(frozen=True)
class StepFinished(Event):
    kind: ClassVar[str] = "step_finished"
    step: Step


@dataclass(frozen=True)
class BudgetHit(Event):
    """A budget ran out; the run ends next with status "budget_exceeded"."""

    kind: ClassVar[str] = "budget_hit"
    step: int
    budget: str
    """"tokens", "cost" or "seconds"."""
    limit: float
    used: float
    message: str


@dataclass(frozen=True)
class RunResumed(Event):
    """A recorded run goes on: steps up to `from_step - 1` came from the log, not the model."""

    kind: ClassVar[str] = "run_resumed"
    run_id: str
    from_step: int
    reexecuted: int
    """How many recorded code actions ran again to rebuild the kernel's state."""
    diverged: tuple[int, ...] = ()
    """Steps whose re-executed observation differed from the recorded one."""


@dataclass(frozen=True)
class LogNote(Event):
    """The run's record is incomplete: the log hit a cap or a write failed, or an observer
    (telemetry) raised and was switched off.

    Written by the log itself where it can (and passed to the stream), so a reader of the log
    knows what is missing from it and why; the run goes on either way.
    """

    kind: ClassVar[str] = "log_note"
    step: int | None
    reason: str
    """"step_cap", "run_cap", "write_failed" or "observer_failed"."""
    message: str
    dropped: int = 0
    """Events this note stands for that were not written (tool calls past a cap)."""


@dataclass(frozen=True)
class PlanUpdated(Event):
    """A planning call (`planning_interval`) before step `step`: what is known, what remains."""

    kind: ClassVar[str] = "plan_updated"
    step: int
    text: str
    usage: Usage
    seconds: float


@dataclass(frozen=True)
class FilesChanged(Event):
    """Files the run created, changed or deleted in its workspace, just before RunFinished."""

    kind: ClassVar[str] = "files_changed"
    files: tuple[FileChange, ...]
    more: int = 0
    """Changes past the listing's cap, not listed."""


@dataclass(frozen=True)
class RunFinished(Event):
    kind: ClassVar[str] = "run_finished"
    status: RunStatus
    output: Any
    usage: Usage
    steps: int
    seconds: float
    error: str | None = None
    result: RunResult | None = field(default=None, repr=False, compare=False)
    """The RunResult, for callers that consume a stream (None in a run read from the log)."""


def event_to_dict(event: Event) -> dict[str, Any]:
    """A JSON-ready dict with the `kind` tag; non-JSON values become their repr."""
    data = {f.name: to_jsonable(getattr(event, f.name)) for f in dataclasses.fields(event) if f.name != "result"}
    return {"kind": event.kind, **data}


def to_jsonable(value: Any, _depth: int = 0) -> Any:
    """Plain JSON-ready data: dataclasses become dicts, tuples lists, anything else its repr.

    Nesting deeper than 100 levels (a tool's result, an answer) is cut with a placeholder, so
    converting never overflows the stack."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if _depth >= _MAX_DEPTH:
        return f"<{type(value).__name__} nested deeper than {_MAX_DEPTH} levels>"
    if isinstance(value, Image):  # what it is, never its bytes
        return {"mime": value.mime, "width": value.width, "height": value.height, "size": value.size,
                "source": value.source}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name), _depth + 1) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, _depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v, _depth + 1) for k, v in value.items()}
    try:
        return repr(value)
    except Exception as exc:  # noqa: BLE001 - RecursionError included
        return f"<{type(value).__name__} whose repr() raised {type(exc).__name__}>"


_MAX_DEPTH = 100
