"""A recorded run, read back from the log and arranged by step, for resume and replay."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from codeact.errors import ConfigError
from codeact.models.base import ModelReply
from codeact.runs.events import (
    ActionParsed,
    Event,
    ModelReplied,
    Observed,
    RunFinished,
    RunStarted,
    Step,
    StepFinished,
    ToolCalled,
)
from codeact.runs.store import RunStore
from codeact.sandbox.base import Execution, ToolCallRecord

__all__ = ["RecordedStep", "Recording"]


@dataclass
class RecordedStep:
    """What the log holds for one step; a step cut short by a crash has only its first parts."""

    index: int
    reply: ModelReplied | None = None
    action: ActionParsed | None = None
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    observed: Observed | None = None
    step: Step | None = None

    @property
    def complete(self) -> bool:
        return self.step is not None

    def model_reply(self) -> ModelReply | None:
        if self.reply is None:
            return None
        r = self.reply
        return ModelReply(r.text, r.usage, tuple(r.tool_calls), r.finish_reason)

    def execution(self) -> Execution | None:
        """The action's recorded result, with its tool calls (logged separately) put back."""
        if self.observed is None or self.observed.execution is None:
            return None
        return dataclasses.replace(self.observed.execution, tool_calls=tuple(self.tool_calls))


@dataclass
class Recording:
    """A run's events, by step.

    Args:
        run_id: the run's id.
        started: its RunStarted event (the task, agent kind, model and tools).
        steps: step index -> what was recorded for it.
        finished: the last RunFinished, if the run ever finished.
        counts: how many events of each (kind, step) the log holds, so a resumed run writes
            only what is new.
    """

    run_id: str
    started: RunStarted
    steps: dict[int, RecordedStep]
    finished: RunFinished | None
    counts: Counter[tuple[str, int | None]]
    events: Sequence[Event] = ()

    @classmethod
    def load(cls, store: RunStore, run_id: str) -> Recording:
        full = store.resolve(run_id)
        return cls.from_events(full, store.events(full))

    @classmethod
    def from_events(cls, run_id: str, events: Sequence[Event]) -> Recording:
        started = next((e for e in events if isinstance(e, RunStarted)), None)
        if started is None:
            raise ConfigError(f"run {run_id} has no run_started event; the log is incomplete")
        steps: dict[int, RecordedStep] = {}
        finished: RunFinished | None = None
        counts: Counter[tuple[str, int | None]] = Counter()

        def at(index: int) -> RecordedStep:
            return steps.setdefault(index, RecordedStep(index))

        for e in events:
            counts[(e.kind, _step(e))] += 1
            if isinstance(e, ModelReplied):
                at(e.step).reply = e
            elif isinstance(e, ActionParsed):
                at(e.step).action = e
            elif isinstance(e, ToolCalled):
                at(e.step).tool_calls.append(e.call)
            elif isinstance(e, Observed):
                at(e.step).observed = e
            elif isinstance(e, StepFinished):
                recorded = at(e.step.index)
                recorded.step = dataclasses.replace(e.step, tool_calls=tuple(recorded.tool_calls))
            elif isinstance(e, RunFinished):
                finished = e
        return cls(run_id, started, steps, finished, counts, tuple(events))

    @property
    def last_complete(self) -> int:
        """The last step such that it and every step before it were recorded whole (0: none)."""
        complete = {i for i, s in self.steps.items() if s.complete}
        index = 0
        while index + 1 in complete:
            index += 1
        return index

    @property
    def task(self) -> str:
        return self.started.task


def _step(event: Event) -> int | None:
    if isinstance(event, StepFinished):
        return event.step.index
    step = getattr(event, "step", None)
    return step if isinstance(step, int) else None
