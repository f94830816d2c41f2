"""One run's append-only event log: redacted, numbered, committed before the run goes on.

The driver hands every event to `RunLog.write` *before* the loop goes on. A log made with
`buffered=True` (the agent's) holds the events in memory until `flush()`, which the driver calls
before each effect (a live model call, an action) and for each tool call as it is reported: a
step's events then cost two commits instead of one each, and what a crash can lose is still only
the work in flight (a model call, a code action, whose inputs are committed), never a model reply
or a tool call that already happened. A plain log commits every event as it is written.

The log is a record, never a reason for a run to fail: what it stores is bounded by the store's
`LogLimits` (per value, per text, per step, per run), any text is stored (lone surrogates
included), and a write that fails becomes a `LogNote` for the caller's stream while the run goes
on. After a write fails for a reason of the store's (disk full, file locked), the log stops
writing this run rather than stall each step on it.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from codeact.errors import ConfigError, RunLogError
from codeact.models.base import Usage
from codeact.runs.codec import encode_event
from codeact.runs.events import (
    Event,
    LogNote,
    ModelReplied,
    RunFinished,
    RunResumed,
    RunStarted,
    StepFinished,
    ToolCalled,
)
from codeact.runs.limits import Bounded, LogLimits
from codeact.runs.pricing import PriceTable
from codeact.runs.redact import Redactor
from codeact.runs.store import RunStore

__all__ = ["RunLog", "new_run_id"]


def new_run_id() -> str:
    """12 hex digits: short enough to type, and any unique prefix works on the command line."""
    return uuid.uuid4().hex[:12]


class RunLog:
    """Writes one run's events to a RunStore and keeps its summary row current.

    Args:
        store: where to write.
        run_id: the run's id; `create` makes a new run, `reopen` continues one.
        redactor: removes secrets from every event before it is written.
        prices: prices the run's usage into its `cost` column.
        limits: what the log keeps of the run; the store's `limits` by default.
        buffered: hold events until `flush()` (see the module docstring).
    """

    def __init__(
        self,
        store: RunStore,
        run_id: str,
        *,
        redactor: Redactor | None = None,
        prices: PriceTable | None = None,
        meta: Mapping[str, Any] | None = None,
        seq: int = 0,
        usage: Usage | None = None,
        cost: float | None = 0.0,
        created: bool = False,
        limits: LogLimits | None = None,
        buffered: bool = False,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.redactor = redactor or Redactor()
        self.prices = prices or PriceTable()
        self.meta = dict(meta or {})
        self._seq = seq
        self._usage = usage or Usage()
        self._cost = cost
        self._model = ""
        self._created = created
        self._lock = threading.Lock()  # tools may report calls from several threads at once
        self.limits = limits or getattr(store, "limits", None) or LogLimits()
        self._bound = Bounded(self.limits, clean=self.redactor.text)
        self._tight = Bounded(self.limits.tight(), clean=self.redactor.text)
        self._run_bytes = 0
        self._step_bytes: dict[int | None, int] = {}
        self._dropped: dict[int | None, tuple[str, int]] = {}
        self._broken: str | None = None
        self._notes: list[LogNote] = []
        self.buffered = buffered
        self._pending: list[tuple[int, float, str, int | None, str]] = []
        self._pending_summary: dict[str, Any] = {}
        self._pending_first = ""

    @classmethod
    def reopen(cls, store: RunStore, run_id: str, *, redactor: Redactor | None = None,
               prices: PriceTable | None = None, model: str | None = None, buffered: bool = False) -> RunLog:
        """Continue writing a recorded run (for resume). Refuses while another process writes it."""
        record = store.get(run_id)
        if record.status == "running" and record.writer_alive and record.pid != os.getpid():
            raise ConfigError(
                f"run {record.id} is still being written by process {record.pid} on {record.host}; "
                "stop that process first (one writer per run)"
            )
        log = cls(store, record.id, redactor=redactor, prices=prices, meta=record.meta,
                  seq=store.last_seq(record.id),
                  usage=Usage(record.prompt_tokens, record.completion_tokens), cost=record.cost,
                  created=True, buffered=buffered)
        log._model = model or record.model
        if log._model != record.model:
            store.update_run(record.id, model=log._model)
        return log

    def write(self, event: Event) -> None:
        """Append `event`, within the limits; never raises for what the event holds or for the
        store failing (see the module docstring). The first event of a new run must be RunStarted."""
        if self._broken is not None:
            return
        with self._lock:
            try:
                self._append(event)
            except ConfigError:
                raise  # a caller's mistake (no RunStarted first), not the log's
            except Exception as exc:  # noqa: BLE001 - recorded as a note; the run goes on
                self._fail(event, exc)

    def flush(self) -> None:
        """Commit the events written since the last flush, in one transaction; never raises (a
        failure is a note, and the log stops writing, as for `write`)."""
        with self._lock:
            self._commit()

    def _commit(self) -> None:
        if not self._pending or self._broken is not None:
            return
        rows, summary, first = self._pending, self._pending_summary, self._pending_first
        self._pending, self._pending_summary, self._pending_first = [], {}, ""
        try:
            self.store.append_many(self.run_id, rows, **summary)
        except Exception as exc:  # noqa: BLE001 - recorded as a note; the run goes on
            self._broken = f"{type(exc).__name__}: {exc}"[:2_000]
            self._notes.append(LogNote(rows[0][3], "write_failed",
                                       f"the run log stopped writing this run at its {first} event: {self._broken}"))

    def take_notes(self) -> list[LogNote]:
        """Notes written (or that could not be written) since the last call, for the stream."""
        with self._lock:
            notes, self._notes = self._notes, []
        return notes

    @property
    def broken(self) -> str | None:
        """Why the log stopped writing this run, if it did."""
        return self._broken

    def _append(self, event: Event) -> None:
        step = _step_of(event)
        over = self._over_cap(step)
        if over is not None and isinstance(event, ToolCalled):
            reason, count = self._dropped.get(step, (over, 0))
            self._dropped[step] = (reason, count + 1)
            return
        self._flush_dropped()
        data = self._encode(event, self._tight if over is not None else self._bound)
        size = self._write(event, data)
        self._run_bytes += size
        self._step_bytes[step] = self._step_bytes.get(step, 0) + size

    def _encode(self, event: Event, bound: Bounded) -> dict[str, Any]:
        return self.redactor.value(_lean(encode_event(event, bound)))  # type: ignore[no-any-return]

    def _over_cap(self, step: int | None) -> str | None:
        if self._run_bytes >= self.limits.run_bytes:
            return "run_cap"
        if step is not None and self._step_bytes.get(step, 0) >= self.limits.step_bytes:
            return "step_cap"
        return None

    def _flush_dropped(self) -> None:
        """Say how many tool calls a step lost to a cap, before the next event that is kept."""
        for step in list(self._dropped):
            reason, count = self._dropped.pop(step)
            cap = (f"the run's cap of {self.limits.run_bytes:,} bytes" if reason == "run_cap"
                   else f"the step's cap of {self.limits.step_bytes:,} bytes")
            note = LogNote(step, reason, f"{count:,} tool calls of step {step} were not kept in the run log: "
                           f"it already held {cap}", count)
            self._write(note, self._encode(note, self._tight))
            self._notes.append(note)

    def _fail(self, event: Event, exc: Exception) -> None:
        message = f"{type(exc).__name__}: {exc}"[:2_000]
        if isinstance(exc, RunLogError):
            self._broken = message
            note = LogNote(_step_of(event), "write_failed",
                           f"the run log stopped writing this run at its {event.kind} event: {message}")
            self._notes.append(note)
            return
        note = LogNote(_step_of(event), "write_failed", f"the {event.kind} event could not be stored: {message}")
        self._notes.append(note)
        try:
            if isinstance(event, RunStarted) and not self._created:
                self.store.create_run(run_id=self.run_id, task="[the task could not be stored]",
                                      agent=event.agent, model=event.model, meta=self.meta)
                self._created = True
            self._write(note, self._encode(note, self._tight))
        except Exception as again:  # noqa: BLE001
            self._broken = f"{type(again).__name__}: {again}"[:2_000]

    def _write(self, event: Event, data: dict[str, Any]) -> int:
        summary: dict[str, Any] = {}
        if isinstance(event, RunStarted):
            self._model = event.model
            if not self._created:
                self.store.create_run(run_id=self.run_id, task=data["task"], agent=event.agent,
                                      model=event.model, meta=self.meta)
                self._created = True
        elif not self._created:
            raise ConfigError("a run's log must start with RunStarted")
        if isinstance(event, ModelReplied):
            self._usage = self._usage + event.usage
            step_cost = self.prices.cost(self._model, event.usage)
            # Priced per reply, so a run resumed with another model adds up correctly.
            self._cost = None if step_cost is None or self._cost is None else self._cost + step_cost
            summary.update(prompt_tokens=self._usage.prompt_tokens,
                           completion_tokens=self._usage.completion_tokens, cost=self._cost)
        elif isinstance(event, StepFinished):
            summary["steps"] = event.step.index
        elif isinstance(event, RunFinished):
            summary.update(status=event.status, error=data.get("error"),
                           output=json.dumps(data.get("output"), ensure_ascii=False))
        elif isinstance(event, RunResumed):
            summary.update(status="running", error=None, pid=os.getpid(), host=socket.gethostname())
        text = json.dumps(data, ensure_ascii=False)
        row = (self._seq + 1, time.time(), event.kind, _step_of(event), text)
        if self.buffered:
            if not self._pending:
                self._pending_first = event.kind
            self._pending.append(row)
            self._pending_summary.update(summary)
        else:
            self.store.append_many(self.run_id, [row], **summary)
        self._seq += 1
        return len(text)

    def abandon(self, status: str, error: str) -> None:
        """Mark a run that ended without RunFinished (the driver raised, or the caller stopped
        reading the stream), so `codeact runs` shows why and `resume` can pick it up."""
        self.flush()
        if self._created and self._broken is None:
            try:
                self.store.update_run(self.run_id, status=status, error=self.redactor.text(error)[:10_000])
            except RunLogError as exc:
                self._broken = f"{type(exc).__name__}: {exc}"

    @property
    def usage(self) -> Usage:
        return self._usage


def _lean(data: dict[str, Any]) -> dict[str, Any]:
    """Tool calls are logged once, in their own events, not again inside the observation and the
    step (a tool's result can be a whole web page); `Recording` puts them back when reading."""
    if data["kind"] == "observed" and isinstance(data.get("execution"), dict):
        data["execution"]["tool_calls"] = []
    elif data["kind"] == "step_finished":
        data["step"]["tool_calls"] = []
    return data


def _step_of(event: Event) -> int | None:
    if isinstance(event, StepFinished):
        return event.step.index
    step = getattr(event, "step", None)
    return step if isinstance(step, int) else None
