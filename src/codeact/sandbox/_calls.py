"""Serving one step's tool calls on a worker thread, so the host can stop waiting at the deadline.

Python cannot stop a thread, so a host tool that does not return can only be abandoned: the
caller stops waiting, the kernel gets a TimeoutError, and the tool runs on in the background
until it returns (its result is then dropped). For that the tool must not run on the thread
that keeps the step's time: `KernelClient` (that thread) reads frames until the first `call`,
then hands the bridge to a `ToolThread`, which runs the tools and reads the next frames itself
until the step's `done`, and hands the bridge back. A step without tool calls costs no thread
switch; a step with calls costs two, however many calls it makes. Meanwhile the client waits
for the hand-back with the step's deadline, interrupts the kernel when it passes, and takes the
bridge back from a tool that overruns (`StepServer.wait`).

A tool marked `concurrent` (a sub-agent) runs on a thread of its own, and the worker goes on
reading frames, so threads in the model's code can wait on several such calls at once. Calls
still running when the step ends (or passes its deadline) are answered with a TimeoutError
before the bridge is handed back: no thread writes to the bridge after the step.

A call waiting for approval (see `codeact.tools.approval`) holds the step's clock: while it
waits, the deadline is not enforced, and when it ends the step's deadline and the tool's own
limit move on by the time waited. The approval's own time limit bounds the wait.

The server also applies the per-step and per-session limits (`BridgeLimits`): calls over a
count limit are refused, and records keep a preview of large arguments.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from codeact.sandbox._codec import (
    BridgeClosed,
    FrameError,
    UnsendableValue,
    encode_frame,
    from_kernel,
    to_kernel,
)
from codeact.sandbox.base import BridgeLimits, Execution
from codeact.sandbox.guest.text import truncate_middle
from codeact.sandbox.guest.wire import TAG
from codeact.tools._thread import ToolThread
from codeact.tools.calls import ToolCallRecord
from codeact.tools.dispatch import ToolDispatcher, preview_arguments

__all__ = ["SEND_TIMEOUT", "Outcome", "SessionTally", "StepServer", "ToolThread"]

SEND_TIMEOUT = 10.0
Outcome = tuple[str, Any]
"""What the worker hands back: ("done", frame), ("error", exception), ("stalled", None),
("yield", None) when asked to, or ("abandoned", None) from the client itself."""


@dataclass
class SessionTally:
    """What the whole session (the client's life) has used of the per-session limits."""

    calls: int = 0
    chars: int = 0


@dataclass
class _Running:
    """The tool call the worker is in now."""

    call_id: int
    name: str
    arguments: dict[str, Any]
    started: float
    limit: float | None
    abandoned: bool = False
    finished: bool = False
    """A concurrent call whose result is in and whose reply is being sent."""


_NO_LOCK = threading.Lock()
_NO_EVENT = threading.Event()


class _Abandoned(Exception):
    """The client took the bridge back while a tool ran: the worker must not touch it."""


class StepServer:
    """One step's tool calls: refusals, limits, records; run on a ToolThread (see the module doc)."""

    def __init__(
        self,
        kernel: Any,
        *,
        exec_id: int,
        timeout: float | None,
        started: float,
        dispatcher: ToolDispatcher,
        limits: BridgeLimits,
        tally: SessionTally,
        grace: float,
        max_output_chars: int,
    ) -> None:
        self.kernel = kernel
        self.exec_id = exec_id
        self.timeout = timeout
        self.deadline = None if timeout is None else started + timeout
        self.dispatcher = dispatcher
        self.limits = limits
        self.tally = tally
        self.grace = grace
        self.max_output_chars = max_output_chars
        self.stopped_at: float | None = None
        self.records: list[ToolCallRecord] = []
        self.calls = 0
        self.chars = 0
        self.refusals: dict[str, int] = {}
        self.worker_reads = False
        self.yield_requested = False
        self.abandoned = False  # a tool overran: its thread is stuck in it
        self._lock = _NO_LOCK  # made on the first hand-off: most steps call no tool
        self._handback = _NO_EVENT
        self._outcome: Outcome | None = None
        self._running: _Running | None = None
        self.held = 0  # calls waiting for approval now: the step's clock is paused
        self._held_since = 0.0
        self._alongside: dict[int, _Running] = {}  # concurrent calls in flight, by call id

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Pause the step's clock while a call waits for approval (see the module doc)."""
        with self._lock:
            if not self.held:
                self._held_since = time.monotonic()
            self.held += 1
        try:
            yield
        finally:
            with self._lock:
                self.held -= 1
                if not self.held:
                    paused = time.monotonic() - self._held_since
                    if self.deadline is not None:
                        self.deadline += paused
                    if self._running is not None and self._running.limit is not None:
                        self._running.limit += paused

    # The client's side ---------------------------------------------------------------------------
    def stop_if_due(self, now: float) -> None:
        """Interrupt the kernel once, when the step's deadline has passed."""
        if self.stopped_at is None and self.deadline is not None and now >= self.deadline and not self.held:
            self.kernel.interrupt()
            self.stopped_at = now

    def hand_off(self, frame: dict[str, Any], worker: ToolThread) -> None:
        """Let `worker` serve this call frame and the frames after it."""
        if self._handback is _NO_EVENT:
            self._lock, self._handback = threading.Lock(), threading.Event()
        self.worker_reads = True
        self._handback.clear()
        worker.submit(lambda: self._serve(frame))

    def wait(self, until: float | None) -> Outcome | None:
        """The worker's hand-back, or ("abandoned", None) if a tool overran; None: keep waiting."""
        wait = None if until is None else max(until - time.monotonic(), 0.0)
        self._handback.wait(wait)
        record = None
        with self._lock:
            if self._handback.is_set():
                self.worker_reads = False
                outcome, self._outcome = self._outcome, None
                return outcome
            running = self._running
            now = time.monotonic()
            if running is None or running.limit is None or now < running.limit or self.held:
                return None
            running.abandoned = self.abandoned = True
            self._running = None
            self.worker_reads = False
            message = (
                f"`{running.name}` did not return within {running.limit - running.started:.3g} s (what was left "
                "of the time limit); it was abandoned and may still be running on the host"
            )
            record = ToolCallRecord(running.name, running.arguments, None, f"TimeoutError: {message}",
                                    now - running.started)
            self.records.append(record)
        self.stop_if_due(now)  # interrupt before the reply lands, so the step reports its time limit
        if self.dispatcher.listener is not None:
            self.dispatcher.listener(record)
        try:
            self._reply(encode_frame({"op": "raise", "id": running.call_id, "type": "TimeoutError", "message": message}))
        except _Stalled:
            return ("stalled", None)
        return ("abandoned", None)

    def wake_time(self) -> float | None:
        """When the client must look again while the worker has the bridge."""
        if self.held:
            return time.monotonic() + 0.2  # the clock moves on when the approval ends
        times = [self.stopped_at + self.grace] if self.stopped_at is not None else []
        if self.stopped_at is None and self.deadline is not None:
            times.append(self.deadline)
        if self.limits.tool_timeout is not None:
            times.append(time.monotonic() + 0.05)  # a tool's own limit may end before the step's
        return min(times) if times else None

    def noted(self, execution: Execution) -> Execution:
        """The execution with a line in stderr for calls refused by a limit, so the model knows."""
        limited = self.refusals.get("PermissionError", 0)
        if not limited:
            return execution
        note = f"[codeact: {limited:,} tool call(s) refused: the tool-call limit was reached]"
        stderr = execution.stderr + ("\n" if execution.stderr and not execution.stderr.endswith("\n") else "") + note
        return dataclasses.replace(execution, stderr=stderr)

    # The worker's side ---------------------------------------------------------------------------
    def _serve(self, frame: dict[str, Any] | None) -> None:
        try:
            while True:
                if frame is not None:
                    op = frame["op"]
                    if op == "call":
                        self._call(frame)
                    elif op == "done" and frame.get("id") == self.exec_id:
                        return self._give_back(("done", frame))
                    elif op == "done" and type(frame.get("id")) is int and frame["id"] < self.exec_id:
                        pass  # a stale or forged reply to an earlier step; skip it
                    elif op == "done":
                        raise FrameError("a `done` frame for a step that was never sent")
                    else:
                        raise FrameError(f"an unexpected {truncate_middle(op, 40)!r} frame")
                if self.yield_requested:
                    return self._give_back(("yield", None))
                if self.stopped_at is not None and self._alongside:
                    self._end_alongside()  # so that threads waiting on them let the kernel stop
                frame = self.kernel.channel.recv(0.2)
        except _Abandoned:
            return
        except _Stalled:
            self._give_back(("stalled", None))
        except BaseException as exc:  # noqa: BLE001 - the client re-raises it on its own thread
            self._give_back(("error", exc))

    def _give_back(self, outcome: Outcome) -> None:
        self._end_alongside()
        with self._lock:
            self._outcome = outcome
            self._handback.set()

    def _call(self, frame: dict[str, Any]) -> None:
        call_id = frame.get("id")
        if type(call_id) is not int:
            raise FrameError("a `call` frame without an integer id")
        refusal = self._refusal(frame)
        if refusal is not None:
            self.refusals[refusal[0]] = self.refusals.get(refusal[0], 0) + 1
            self._reply(encode_frame({"op": "raise", "id": call_id, "type": refusal[0], "message": refusal[1]}))
            return
        name, args, kwargs = frame["name"], frame["args"], frame["kwargs"]
        limits, size = self.limits, self.kernel.channel.last_size
        keep = min(
            limits.max_argument_chars,
            limits.max_argument_chars_per_step - self.chars,
            limits.max_argument_chars_per_session - self.tally.chars,
        )
        used = min(size, max(keep, 0) + 1_000)
        self.calls += 1
        self.chars += used
        self.tally.calls += 1
        self.tally.chars += used
        args, kwargs = [from_kernel(a) for a in args], {k: from_kernel(v) for k, v in kwargs.items()}
        now = time.monotonic()
        limit = self.deadline
        if limits.tool_timeout is not None:
            limit = now + limits.tool_timeout if limit is None else min(limit, now + limits.tool_timeout)
        shown = kwargs if size <= keep else preview_arguments(kwargs, keep)
        running = _Running(call_id, name, {"*args": args, **shown} if args else shown, now, limit)
        if self.dispatcher.concurrent(name):
            return self._call_alongside(running, args, kwargs, None if size <= keep else keep)
        with self._lock:
            self._running = running
        outcome = self.dispatcher.call(
            name, args, kwargs, keep_chars=None if size <= keep else keep, notify=False, hold=self.hold
        )
        with self._lock:
            running, self._running = self._running, None
            if running is None or running.abandoned:
                raise _Abandoned
            self.records.append(outcome.record)
        if self.dispatcher.listener is not None:
            self.dispatcher.listener(outcome.record)
        self._reply(self._encoded(call_id, name, outcome))

    def _call_alongside(self, running: _Running, args: list[Any], kwargs: dict[str, Any],
                        keep_chars: int | None) -> None:
        """Run a concurrent tool's call on a thread of its own; the worker goes on reading frames."""
        call_id, name = running.call_id, running.name

        def run() -> None:
            outcome = self.dispatcher.call(name, args, kwargs, keep_chars=keep_chars, notify=False, hold=self.hold)
            with self._lock:
                if self._alongside.get(call_id) is not running:
                    return  # the step ended first: the call was answered and recorded then
                running.finished = True
                self.records.append(outcome.record)
            try:
                if self.dispatcher.listener is not None:
                    self.dispatcher.listener(outcome.record)
                self._reply(self._encoded(call_id, name, outcome))
            except (_Stalled, BridgeClosed):
                pass  # the step ends without this reply, as for a kernel that stopped reading
            finally:
                with self._lock:
                    self._alongside.pop(call_id, None)

        with self._lock:
            self._alongside[call_id] = running
        threading.Thread(target=run, name=f"codeact-{name}"[:40], daemon=True).start()

    def _end_alongside(self) -> None:
        """Answer the concurrent calls still running with a TimeoutError, and wait for the
        replies of those that just finished: after this no thread writes to the bridge."""
        if not self._alongside:
            return
        with self._lock:
            pending = [r for r in self._alongside.values() if not r.finished]
            for running in pending:
                del self._alongside[running.call_id]
        now = time.monotonic()
        for running in pending:
            message = (f"`{running.name}` was still running when the step ended; it was abandoned and may "
                       "still be running on the host")
            record = ToolCallRecord(running.name, running.arguments, None, f"TimeoutError: {message}",
                                    now - running.started)
            with self._lock:
                self.records.append(record)
            if self.dispatcher.listener is not None:
                self.dispatcher.listener(record)
            try:
                self._reply(encode_frame({"op": "raise", "id": running.call_id, "type": "TimeoutError",
                                          "message": message}))
            except (_Stalled, BridgeClosed):
                break  # the kernel does not read (or is gone): no later reply can reach it either
        until = time.monotonic() + SEND_TIMEOUT
        while self._alongside and time.monotonic() < until:
            time.sleep(0.005)

    def _encoded(self, call_id: int, name: str, outcome: Any) -> bytes:
        if not outcome.ok:
            message = truncate_middle(outcome.error_message, self.max_output_chars)
            return encode_frame({"op": "raise", "id": call_id, "type": outcome.error_type, "message": message})
        try:
            return encode_frame({"op": "return", "id": call_id, **to_kernel(outcome.value)})
        except (UnsendableValue, FrameError) as exc:
            message = f"{name}() returned a value that cannot be sent into the sandbox: {exc}"
            return encode_frame({"op": "raise", "id": call_id, "type": "TypeError", "message": message})

    def _refusal(self, frame: dict[str, Any]) -> tuple[str, str] | None:
        """Why this call is answered with an error instead of a tool: (type, message), or None."""
        name, args, kwargs = frame.get("name"), frame.get("args"), frame.get("kwargs")
        if frame.get("exec") != self.exec_id:
            return "RuntimeError", (
                "this tool call was made in an earlier step, by a thread that outlived it; "
                "tools answer only the step that is running"
            )
        if self.stopped_at is not None:
            return "TimeoutError", f"the step reached its {self.timeout:g} s time limit; no more tool calls"
        if self.yield_requested:
            return "KeyboardInterrupt", "the host was interrupted"
        if not (
            isinstance(name, str)
            and 0 < len(name) <= 200
            and isinstance(args, list)
            and isinstance(kwargs, dict)
            and TAG not in kwargs
        ):
            return "TypeError", "a malformed tool call (name, args or kwargs of the wrong type)"
        limits = self.limits
        if self.calls >= limits.max_calls_per_step:
            return "PermissionError", (
                f"this step reached its limit of {limits.max_calls_per_step:,} tool calls (max_calls_per_step)"
            )
        if self.tally.calls >= limits.max_calls_per_session:
            return "PermissionError", (
                f"this sandbox reached its limit of {limits.max_calls_per_session:,} tool calls "
                "(max_calls_per_session)"
            )
        return None

    def _reply(self, data: bytes) -> None:
        """Send a reply, waiting no longer than the step's time limit and grace allow."""
        limit = self.stopped_at or self.deadline
        wait = SEND_TIMEOUT if limit is None else max(limit + self.grace - time.monotonic(), 0.05)
        with self._lock:  # the worker and the client (abandoning a tool) may both reply
            try:
                self.kernel.channel.send_bytes(data, timeout=wait)
            except BridgeClosed as exc:
                if isinstance(exc.__cause__, TimeoutError):
                    raise _Stalled from exc
                raise


class _Stalled(Exception):
    """A reply could not be sent in time: the kernel stopped reading its end."""
