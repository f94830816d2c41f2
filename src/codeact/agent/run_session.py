"""The I/O side of one run, shared by the sync and async drivers (see `driver`).

The loop is pure; the drivers perform its effects. Everything a run does besides calling the
model and running code lives here, so both drivers behave the same:

- record: every event goes to the run log (and to telemetry) before the loop goes on, and the
  log commits them before each effect (a live model call, an action); tool calls are committed
  as the bridge reports them, while the code is still running;
- resume: recorded steps are fed back to the loop (recorded replies, recorded executions) while
  their code runs again in the kernel to rebuild its state, with tool results served from the
  log; events the log already holds are neither written again nor shown again;
- replay: recorded replies, live code, recorded (or live, compared) tool results; differences
  from the recording are collected as `Divergence`s.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Protocol

from codeact.agent.feed import Divergence, ToolFeed, feed_tools
from codeact.agent.loop import Action, CallModel, RunAction
from codeact.errors import ModelError
from codeact.models.base import Message, ModelReply
from codeact.runs.codec import encode_value
from codeact.runs.events import (
    ApprovalDecided,
    ApprovalRequested,
    Event,
    LogNote,
    ModelRequested,
    Observed,
    PlanUpdated,
    RunFinished,
    RunResumed,
    RunStarted,
    StepFinished,
    ToolCalled,
)
from codeact.runs.log import RunLog
from codeact.runs.recording import Recording
from codeact.sandbox.base import Execution, ToolCallRecord
from codeact.tools.tool import Tool

__all__ = ["RunObserver", "RunSession", "SessionMode"]

SessionMode = Literal["record", "resume", "replay"]

# Kinds that belong to one step and that a resumed run may meet again; the rest are per session.
_STEP_KINDS = frozenset({"model_requested", "model_replied", "action_parsed", "tool_called", "observed",
                         "step_finished", "plan_updated"})


class RunObserver(Protocol):
    """Something that watches a run as it happens (telemetry). Calls come in the run's order."""

    def on_model_request(self, step: int, messages: Sequence[Message], stop: Sequence[str]) -> None: ...
    def on_action(self, step: int, code: str | None) -> None: ...
    def on_tool_call(self, step: int, record: ToolCallRecord) -> None: ...
    def on_event(self, event: Event) -> None: ...
    def close(self, error: BaseException | None) -> None: ...


class RunSession:
    """One run's log writer, observers and recorded-data feed.

    Args:
        run_id: the id the run's events carry (None when nothing is recorded).
        log: where events are written; None writes nothing.
        observers: telemetry and the like.
        mode: "record" (a new run), "resume" or "replay".
        recording: the recorded run, for resume and replay.
        live_tools: resume/replay call the real tools instead of serving recorded results (replay
            then reports results that differ).
        format_observation: the agent's own formatting, to compare re-executed actions.
        loop: the event loop async tools should run on (async driver).
        reexecute: resume runs recorded actions again to rebuild state (False: the agent's
            actions leave none, so recorded results are fed back without running anything).
    """

    def __init__(
        self,
        *,
        run_id: str | None,
        log: RunLog | None = None,
        observers: Sequence[RunObserver] = (),
        mode: SessionMode = "record",
        recording: Recording | None = None,
        live_tools: bool = False,
        format_observation: Callable[[Execution], str] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        reexecute: bool = True,
    ) -> None:
        if mode != "record" and recording is None:
            raise ValueError(f"a {mode} session needs the recording")
        self.run_id = run_id
        self.log = log
        self.observers = list(observers)
        self.mode = mode
        self.recording = recording
        self.live_tools = live_tools
        self.format_observation = format_observation
        self.reexecute = reexecute
        self.divergences: list[Divergence] = []
        self.feed = ToolFeed(on_divergence=self._diverged, loop=loop)
        self.finished: RunFinished | None = None
        self.reexecuted = 0
        self.resume_diverged: list[int] = []
        self._lock = threading.RLock()
        self._logged: Counter[tuple[str, int | None]] = Counter(recording.counts if recording else ())
        self._seen: Counter[tuple[str, int | None]] = Counter()
        self._tool_seen: Counter[int] = Counter()
        self._calls_to_show: list[Event] = []  # tool calls and approvals, for the stream
        self._step = 0
        self._last_request: tuple[Message, ...] = ()
        self._announced = mode != "resume"
        self._announcement: RunResumed | None = None
        self._closed = False
        self._observer_notes: list[Event] = []
        self.ff_until = recording.last_complete if (recording and mode == "resume") else 0
        """Resume feeds steps up to here from the log instead of running them live."""

    # -- what the drivers call -------------------------------------------------------------------
    def tools(self, tools: Mapping[str, Tool]) -> dict[str, Tool]:
        """The tools to install in the kernel for this run."""
        if self.mode == "record" and (self.feed.loop is None or not _any_async(tools)):
            return dict(tools)
        return feed_tools(tools, self.feed)

    def model_reply(self, call: CallModel) -> ModelReply | None:
        """Record the request; return the recorded reply to use instead of the model, if any."""
        step = call.step
        with self._lock:
            keep = _common_prefix(self._last_request, call.messages)
            request = ModelRequested(step, keep, tuple(call.messages[keep:]))
            self._last_request = tuple(call.messages)
        self._note(request, yield_it=False)
        if call.purpose == "plan":
            return self._plan_reply(call)
        recorded = self.recording.steps.get(step) if self.recording else None
        if self.mode == "replay":
            reply = recorded.model_reply() if recorded else None
            if reply is None:
                self._diverged(Divergence(step, "missing_reply", "the recorded run ended before this step",
                                          f"the replayed run asked the model for step {step}"))
                raise ModelError(f"replay: the recording has no model reply for step {step}")
            self._observe("on_model_request", step, call.messages, call.stop)
            return reply
        if self.mode == "resume" and recorded is not None and step <= self.ff_until + 1:
            reply = recorded.model_reply()
            if reply is not None:
                if step > self.ff_until:
                    self._observe("on_model_request", step, call.messages, call.stop)
                return reply
        self._observe("on_model_request", step, call.messages, call.stop)
        self._flush()  # the run goes on to a live model call
        return None

    def _plan_reply(self, call: CallModel) -> ModelReply | None:
        """A planning call: its recorded plan in replay and resume, else None (a live call)."""
        recorded = next((e for e in (self.recording.events if self.recording else ())
                         if isinstance(e, PlanUpdated) and e.step == call.step), None)
        if self.mode == "replay" and recorded is None:
            self._diverged(Divergence(call.step, "missing_reply", "the recorded run made no plan here",
                                      f"the replayed run asked for a plan before step {call.step}"))
            raise ModelError(f"replay: the recording has no plan before step {call.step}")
        if self.mode != "record" and recorded is not None:
            if self.mode == "replay" or call.step > self.ff_until:
                self._observe("on_model_request", call.step, call.messages, call.stop)
            return ModelReply(recorded.text, recorded.usage)
        self._observe("on_model_request", call.step, call.messages, call.stop)
        self._flush()
        return None

    def perform(self, effect: RunAction, perform: Callable[[Action], Execution]) -> Execution:
        """Carry out a RunAction: live, re-executed for state, or against the recording."""
        step = effect.step
        self._step = step
        recorded = self.recording.steps.get(step) if self.recording else None
        if self.mode == "resume" and recorded is not None and step <= self.ff_until:
            kept = recorded.execution()
            if kept is not None and not self.reexecute:
                return kept
            if self.live_tools:
                self.feed.live()
            else:
                self.feed.load(step, recorded.tool_calls, "serve")
            self._flush()
            rerun = perform(effect.action)  # rebuilds the kernel's state; the loop gets the record
            self.reexecuted += 1
            if kept is None:
                return rerun
            if self.format_observation is not None and (
                self.format_observation(rerun) != self.format_observation(kept)
            ):
                self.resume_diverged.append(step)
            return kept
        self._observe("on_action", step, effect.action.code)
        if self.mode == "resume" and recorded is not None and not self.live_tools:
            self.feed.load(step, recorded.tool_calls, "serve")  # the step a crash cut short
        elif self.mode == "replay":
            calls = recorded.tool_calls if recorded else []
            self.feed.load(step, calls, "compare" if self.live_tools else "strict")
        else:
            self.feed.live()
        self._flush()  # the run goes on to an action
        return perform(effect.action)

    def on_tool_call(self, record: ToolCallRecord) -> None:
        """The bridge's listener, the one report of each tool call: logged now, while the action is
        still running, and shown to the stream before the next event the loop yields."""
        self._tool_call(self._step, record)

    def approval_context(self) -> tuple[str | None, int | None]:
        """(run id, step) for approval requests made now."""
        return self.run_id, self._step or None

    def on_approval(self, request: Any, decision: Any) -> None:
        """The dispatcher's approval listener: each request and decision is logged and committed
        now (a server reading the log sees it while the code waits), and shown to the stream
        with the step's tool calls."""
        step = request.step or self._step
        event: Event
        if decision is None:
            event = ApprovalRequested(step, request.id, request.tool, request.arguments, request.reason,
                                      request.description, request.timeout_s)
        else:
            event = ApprovalDecided(step, request.id, request.tool, decision.verdict, decision.message,
                                    decision.arguments, decision.by, decision.timed_out,
                                    max(time.time() - request.created_at, 0.0))
        with self._lock:
            self._calls_to_show.append(event)
        if self.log is not None:
            self.log.write(event)
            self.log.flush()
        self._tell("on_event", event)

    def emit(self, event: Event) -> list[Event]:
        """Record an event from the loop; return what the caller's stream should see (with the
        notes of the log (what it could not keep, or that it stopped writing) and of observers
        that failed)."""
        out = self._emit(event)
        if isinstance(event, RunFinished):
            self._flush()
        with self._lock:
            notes, self._observer_notes = self._observer_notes, []
        if self.log is not None:
            notes += self.log.take_notes()
        if notes:
            finished = out and isinstance(out[-1], RunFinished)
            out = out[:-1] + notes + out[-1:] if finished else out + notes
        return out

    def _emit(self, event: Event) -> list[Event]:
        self._announce(event)
        out: list[Event] = []
        if self._announcement is not None:  # a resumed run says so before anything it does live
            out.append(self._announcement)
            self._announcement = None
        with self._lock:  # the tool calls the last action made come before what the loop says next
            out += self._calls_to_show
            self._calls_to_show.clear()
        if isinstance(event, RunFinished):
            self.finished = event
            if self.mode == "replay":
                self._compare_outcome(event)
        if isinstance(event, Observed) and self.mode == "replay":
            self._compare_observation(event)
        if self._note(event, yield_it=True):
            out.append(event)
        return out

    def close(self, error: BaseException | None = None) -> None:
        """End the session; a run that ended without RunFinished is marked so in the log."""
        if self._closed:
            return
        self._closed = True
        if isinstance(error, asyncio.CancelledError):  # the async driver's task was cancelled
            error = KeyboardInterrupt()
        self._flush()
        if self.finished is None and self.log is not None:
            if error is None or isinstance(error, GeneratorExit):
                self.log.abandon("interrupted", "the caller stopped reading the run's events")
            elif isinstance(error, KeyboardInterrupt):
                self.log.abandon("interrupted", "interrupted by the user")
            else:
                self.log.abandon("error", f"{type(error).__name__}: {error}")
        self._tell("close", error if self.finished is None else None)

    # -- internals --------------------------------------------------------------------------------
    def _flush(self) -> None:
        """Commit what the log holds: before each effect, so a crash loses only the work in flight."""
        if self.log is not None:
            self.log.flush()

    def _announce(self, event: Event) -> None:
        """Before the first thing a resumed run does live, say so (in the log and the stream)."""
        if self._announced or self._fast_forwarded(event):
            return
        self._announced = True
        assert self.recording is not None
        resumed = RunResumed(self.recording.run_id, self.ff_until + 1, self.reexecuted, tuple(self.resume_diverged))
        if self.log is not None:
            self.log.write(resumed)
        self._tell("on_event", resumed)
        self._announcement = resumed

    def _note(self, event: Event, *, yield_it: bool) -> bool:
        """Write and observe `event` unless the log has it; say whether the stream should get it."""
        self._announce(event)
        key = (event.kind, _step_of(event))
        with self._lock:
            self._seen[key] += 1
            logged = (event.kind in _STEP_KINDS or event.kind == "run_started") and (
                self._seen[key] <= self._logged[key]
            )
        if not logged:
            if self.log is not None:
                self.log.write(event)
            if not isinstance(event, ModelRequested):
                self._observe_event(event)
        return yield_it and not self._fast_forwarded(event)

    def _tool_call(self, step: int, record: ToolCallRecord) -> None:
        event = ToolCalled(step, record)
        if step > self.ff_until:
            self._announce(event)
        with self._lock:
            if not self._fast_forwarded(event):
                self._calls_to_show.append(event)
            self._tool_seen[step] += 1
            key = ("tool_called", step)
            if self._tool_seen[step] <= self._logged[key]:
                return  # the log has it already (a resumed step served from the log)
            self._logged[key] = self._tool_seen[step]
        if self.log is not None:
            self.log.write(event)
            self.log.flush()  # a tool call has happened: resume must not make it again
        self._tell("on_tool_call", step, record)

    def _fast_forwarded(self, event: Event) -> bool:
        if self.mode != "resume":
            return False
        if isinstance(event, RunStarted):
            return True
        step = _step_of(event)
        return event.kind in _STEP_KINDS and step is not None and step <= self.ff_until

    def _observe(self, method: str, step: int, *args: Any) -> None:
        if self.mode == "resume" and step <= self.ff_until:
            return
        self._tell(method, step, *args)

    def _observe_event(self, event: Event) -> None:
        step = _step_of(event)
        if self.mode == "resume" and step is not None and step <= self.ff_until:
            return
        self._tell("on_event", event)

    def _tell(self, method: str, *args: Any) -> None:
        """Call `method` on every observer; one that raises is dropped (telemetry must not end a
        run), and the stream is told so through a LogNote."""
        for observer in list(self.observers):
            try:
                getattr(observer, method)(*args)
            except Exception as exc:  # noqa: BLE001 - an observer's failure is reported, not raised
                self.observers.remove(observer)
                note = LogNote(self._step or None, "observer_failed",
                               f"{type(observer).__name__} stopped after {type(exc).__name__}: {exc}"[:2_000])
                with self._lock:
                    self._observer_notes.append(note)

    def _diverged(self, divergence: Divergence) -> None:
        with self._lock:
            self.divergences.append(divergence)

    def _compare_observation(self, event: Observed) -> None:
        assert self.recording is not None
        recorded = self.recording.steps.get(event.step)
        before = recorded.observed.observation if recorded and recorded.observed else None
        if before is None:
            self._diverged(Divergence(event.step, "observation", "(no observation was recorded)",
                                      event.observation))
        elif before != event.observation:
            self._diverged(Divergence(event.step, "observation", before, event.observation))

    def _compare_outcome(self, event: RunFinished) -> None:
        assert self.recording is not None
        before = self.recording.finished
        if before is None:
            return
        if (before.status, _plain(before.output)) != (event.status, _plain(event.output)):
            self._diverged(Divergence(event.steps, "outcome", f"{before.status}: {before.output!r}",
                                      f"{event.status}: {event.output!r}"))


def _common_prefix(a: Sequence[Message], b: Sequence[Message]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _step_of(event: Any) -> int | None:
    if isinstance(event, StepFinished):
        return event.step.index
    step = getattr(event, "step", None)
    return step if isinstance(step, int) else None


def _any_async(tools: Mapping[str, Tool]) -> bool:
    return any(inspect.iscoroutinefunction(t.function) for t in tools.values())


def _plain(value: Any) -> Any:
    return encode_value(value)

