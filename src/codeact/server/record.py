"""The run log as the server reads it: events after a sequence number, and a wake-up on commit.

Event streams are read from the log, never from a run's in-memory events, so a client that
reconnects (`Last-Event-ID`), a client of a run started before a server restart, and a client of
a live run all read the same record. To keep the delay from a commit to the client short without
every stream polling SQLite, `WatchedStore` tells the event loop when a run commits; streams
wait for that (or a slow poll, for runs written by another process).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from codeact.runs.store import RunStore

__all__ = ["LoggedEvent", "WatchedStore"]


@dataclass(frozen=True)
class LoggedEvent:
    """One committed event: its number in the run, kind, and the JSON text that was written."""

    seq: int
    kind: str
    time: float
    data: str


class WatchedStore(RunStore):
    """A RunStore that wakes the server's waiting streams when a run's events are committed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._waiters_lock = threading.Lock()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wake-ups are delivered on `loop` (the server's)."""
        self._loop = loop

    def append_many(self, run_id: str, rows: Sequence[tuple[int, float, str, int | None, str]],
                    **summary: Any) -> None:
        super().append_many(run_id, rows, **summary)
        self.touch(run_id)

    def update_run(self, run_id: str, **columns: Any) -> None:
        super().update_run(run_id, **columns)
        self.touch(run_id)

    def touch(self, run_id: str) -> None:
        """Wake the streams waiting on `run_id` (from any thread)."""
        loop = self._loop
        with self._waiters_lock:
            waiters = list(self._waiters.get(run_id, ()))
        if loop is None or not waiters or loop.is_closed():
            return
        for waiter in waiters:
            try:
                loop.call_soon_threadsafe(waiter.set)
            except RuntimeError:  # the loop closed meanwhile
                return

    def waiter(self, run_id: str) -> asyncio.Event:
        """An event set when `run_id` commits; give it back with `forget`."""
        event = asyncio.Event()
        with self._waiters_lock:
            self._waiters.setdefault(run_id, set()).add(event)
        return event

    def forget(self, run_id: str, event: asyncio.Event) -> None:
        with self._waiters_lock:
            waiting = self._waiters.get(run_id)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._waiters[run_id]

    def events_after(self, run_id: str, seq: int, *, limit: int = 200) -> list[LoggedEvent]:
        """The run's committed events numbered above `seq`, in order, at most `limit`."""
        rows = self._read(
            "SELECT seq, kind, time, data FROM events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (run_id, seq, limit),
        )
        return [LoggedEvent(int(s), str(k), float(t), str(d)) for s, k, t, d in rows]

    def owned_runs(self, user: str, *, limit: int) -> list[Any]:
        """The newest runs the server started for `user`."""
        rows = self._read(
            "SELECT id FROM runs WHERE json_extract(meta, '$.server.user') = ? ORDER BY created DESC LIMIT ?",
            (user, limit),
        )
        return [self.get(r[0]) for r in rows]


def decode(event: LoggedEvent) -> dict[str, Any]:
    """The event's data as a dict (the log wrote it, so it is JSON)."""
    value = json.loads(event.data)
    return value if isinstance(value, dict) else {"kind": event.kind, "value": value}
