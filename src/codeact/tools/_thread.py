"""The one thread that host tools run on when a caller must be able to stop waiting for them.

Python cannot stop a thread, so a tool that overruns its time keeps its thread: the caller
retires the thread (it ends once the tool returns) and the next call starts a fresh one. Both the
dispatcher (a tool call with a timeout) and the bridge (a step's tool calls) use it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

__all__ = ["ToolThread"]


class ToolThread:
    """A daemon thread that runs one job at a time; retired when a tool on it overruns."""

    def __init__(self, name: str = "codeact-tools") -> None:
        self.jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self.alive = True
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def submit(self, job: Callable[[], None]) -> None:
        self.jobs.put(job)

    def retire(self) -> None:
        self.alive = False
        self.jobs.put(None)

    def _run(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            job()
