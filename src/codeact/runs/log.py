"""One run's append-only event log: redacted, numbered, committed one event at a time.

The driver hands every event to `RunLog.write` *before* the loop goes on, so what a crash can
lose is the work in flight (a model call, a code action) and never what was already seen.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from collections.abc import Mapping
from typing import Any

from codeact.errors import ConfigError
from codeact.models.base import Usage
from codeact.runs.codec import encode_event
from codeact.runs.events import Event, ModelReplied, RunFinished, RunResumed, RunStarted, StepFinished
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

    @classmethod
    def reopen(cls, store: RunStore, run_id: str, *, redactor: Redactor | None = None,
               prices: PriceTable | None = None, model: str | None = None) -> RunLog:
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
                  created=True)
        log._model = model or record.model
        if log._model != record.model:
            store.update_run(record.id, model=log._model)
        return log

    def write(self, event: Event) -> None:
        """Append `event`; the first event of a new run must be RunStarted."""
        data = self.redactor.value(_lean(encode_event(event)))
        with self._lock:
            self._write(event, data)

    def _write(self, event: Event, data: dict[str, Any]) -> None:
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
        self._seq += 1
        self.store.append(self.run_id, self._seq, event.kind, _step_of(event),
                          json.dumps(data, ensure_ascii=False), **summary)

    def abandon(self, status: str, error: str) -> None:
        """Mark a run that ended without RunFinished (the driver raised, or the caller stopped
        reading the stream), so `codeact runs` shows why and `resume` can pick it up."""
        if self._created:
            self.store.update_run(self.run_id, status=status, error=self.redactor.text(error))

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
