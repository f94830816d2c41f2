"""The host end of the bridge: kernel processes, and the client that drives them.

Tool calls from the kernel go to a `codeact.tools.dispatch.ToolDispatcher`. `KernelProcess` is one running kernel (spawned here, or handed over by
a zygote). `KernelClient` runs code in kernels: it serves tool calls, enforces timeouts with
SIGINT then SIGKILL, and replaces a kernel that dies, so every sandbox shares one recovery path
and differs only in how it launches kernels.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from codeact.errors import ConfigError, SandboxError
from codeact.sandbox._codec import (
    BridgeClosed,
    FrameChannel,
    FrameError,
    UnsendableValue,
    encode_frame,
    from_kernel,
    to_kernel,
    truncate_middle,
)
from codeact.sandbox.base import BridgeLimits, ExecError, Execution, ToolCallRecord
from codeact.sandbox.kernel import TAG
from codeact.tools.dispatch import ToolDispatcher
from codeact.tools.tool import Tool

__all__ = [
    "KERNEL_PATH",
    "KernelClient",
    "KernelProcess",
    "kernel_command",
    "tool_definitions",
]

KERNEL_PATH = Path(__file__).with_name("kernel.py")
_SEND_TIMEOUT = 10.0


def tool_definitions(tools: Mapping[str, Tool]) -> list[dict[str, Any]]:
    """What the kernel needs to build a stub per tool: signature parts as text, and the docstring."""
    definitions = []
    for name, t in tools.items():
        params = []
        signature = t.signature
        shown = t.shown_defaults()  # literals from the source only: a computed default may be a secret
        for p in signature.parameters.values():
            param: dict[str, Any] = {
                "name": p.name,
                "kind": p.kind.name,
                "has_default": p.default is not p.empty,
            }
            if p.annotation is not p.empty:
                param["annotation"] = inspect.formatannotation(p.annotation)
            if p.default is not p.empty:
                param["default"] = shown.get(p.name, "...")
            params.append(param)
        returns = signature.return_annotation
        definitions.append(
            {
                "name": name,
                "signature": t.python_signature(),
                "doc": t.docstring(),
                "params": params,
                "returns": None if returns is signature.empty else inspect.formatannotation(returns),
            }
        )
    return definitions


# -- kernel processes -------------------------------------------------------------------------


def kernel_command(fd: int, *, python: str | None = None) -> list[str]:
    """argv that runs the kernel on inherited socket fd `fd` (wrap it to add isolation)."""
    argv = [python or sys.executable, str(KERNEL_PATH), "--fd", str(fd)]
    if threading.current_thread() is threading.main_thread():
        # PR_SET_PDEATHSIG fires when the *thread* that forked exits, so only ask for it from
        # the main thread; elsewhere the kernel still exits when the socket hangs up.
        argv.append("--pdeathsig")
    return argv


class KernelProcess:
    """One kernel process and the host end of its bridge socket.

    `spawn` starts `kernel_command(fd)` or any command built around it (a bwrap wrapper); a
    zygote that forks kernels can instead pass its connected socket and the child's pid.
    Subclass to change how a kernel is interrupted or killed.

    Args:
        sock: the host end of the kernel's socketpair.
        process: the Popen, when the kernel is our child.
        pid: the kernel's pid when it is not our child (signals then go to this pid only).
        group: whether the pid leads its own process group, so signals reach its children too.
    """

    def __init__(
        self,
        sock: socket.socket,
        *,
        process: subprocess.Popen[bytes] | None = None,
        pid: int | None = None,
        group: bool = False,
    ) -> None:
        self.channel = FrameChannel(sock)
        self.process = process
        self.pid = process.pid if process is not None else pid
        self.group = group

    @classmethod
    def spawn(
        cls,
        command: Callable[[int], Sequence[str]] | None = None,
        *,
        python: str | None = None,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        **popen_kwargs: Any,
    ) -> KernelProcess:
        """Start a kernel as a child in its own session; `command(fd)` gives its argv."""
        host_end, kernel_end = socket.socketpair()
        fd = kernel_end.fileno()
        try:
            argv = list(command(fd)) if command is not None else kernel_command(fd, python=python)
        except BaseException:
            host_end.close()
            kernel_end.close()
            raise
        options: dict[str, Any] = {
            "stdin": subprocess.DEVNULL,
            "stdout": subprocess.DEVNULL,
            "stderr": subprocess.PIPE,  # start-up errors and faulthandler reports after a crash
            "start_new_session": True,  # Ctrl-C in the host's terminal must not reach it
            "cwd": cwd,
            "env": None if env is None else dict(env),
            **popen_kwargs,
        }
        options["pass_fds"] = (fd, *popen_kwargs.get("pass_fds", ()))
        try:
            process = subprocess.Popen(argv, **options)
        except OSError as exc:
            host_end.close()
            raise SandboxError(f"cannot start the kernel with {argv[0]!r}: {exc}") from exc
        finally:
            kernel_end.close()
        if process.stderr is not None:
            os.set_blocking(process.stderr.fileno(), False)
        return cls(host_end, process=process, group=True)

    def interrupt(self) -> None:
        """SIGINT, like Ctrl-C in a terminal: the running cell gets KeyboardInterrupt.

        With `group`, the kernel's children get it too (a `subprocess.run` in the cell stops);
        children started in a session of their own are not touched.
        """
        self._signal(signal.SIGINT)

    def kill(self) -> None:
        """SIGKILL the kernel (and its process group), reap it, close the bridge."""
        self._signal(signal.SIGKILL)
        if self.process is not None:
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            if self.process.stderr is not None:
                self.process.stderr.close()
        self.channel.close()

    def exit_reason(self, wait: float = 1.0) -> str | None:
        """How the kernel ended ("died with signal SIGSEGV ..."), or None if it is still running."""
        if self.process is None:
            return None
        try:
            code = self.process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            return None
        if code < 0:
            sig = -code
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = f"signal {sig}"
            detail = signal.strsignal(sig) or ""
            if sig == signal.SIGKILL:
                detail = "killed; the system may have run out of memory"
            return f"died with signal {name}" + (f" ({detail.lower()})" if detail else "")
        return f"exited with status {code}"

    def stderr_text(self, limit: int = 16_000) -> str:
        """What the kernel wrote to its original stderr (start-up errors, crash reports)."""
        stream = self.process.stderr if self.process is not None else None
        if stream is None or stream.closed:
            return ""
        try:
            data = stream.read(limit) or b""
        except (OSError, ValueError):
            return ""
        return data.decode("utf-8", "replace")

    def _signal(self, sig: int) -> None:
        if self.pid is None or (self.process is not None and self.process.returncode is not None):
            return  # already reaped: the pid may belong to someone else now
        try:
            if self.group:
                os.killpg(self.pid, sig)
            else:
                os.kill(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


# -- the client -------------------------------------------------------------------------------


class KernelClient:
    """Runs code in a kernel: serves its tool calls, enforces timeouts, replaces it when it dies.

    Args:
        launch: returns a new KernelProcess (not yet greeted); called at start and after a crash.
        dispatcher: runs the tools the kernel calls.
        max_output_chars: cap for stdout, stderr and the result repr of one step.
        interrupt_grace: seconds a timed-out step gets after SIGINT before SIGKILL.
        start_timeout: seconds a new kernel gets to say hello.
        limits: tool calls per step and session, a tool's own time limit, and how much of
            their arguments records keep.
    """

    def __init__(
        self,
        launch: Callable[[], KernelProcess],
        *,
        dispatcher: ToolDispatcher | None = None,
        max_output_chars: int = 20_000,
        interrupt_grace: float = 2.0,
        start_timeout: float = 30.0,
        limits: BridgeLimits | None = None,
    ) -> None:
        self.launch = launch
        self.limits = limits or BridgeLimits()
        self.authorized_imports: tuple[str, ...] | None = None
        self.dispatcher = dispatcher or ToolDispatcher()
        self.max_output_chars = max_output_chars
        self.interrupt_grace = interrupt_grace
        self.start_timeout = start_timeout
        self.kernel: KernelProcess | None = None
        self.kernel_info: dict[str, Any] = {}
        self._definitions = tool_definitions(self.dispatcher.tools)
        self._exec_id = 0
        self._call_in_flight: int | None = None
        self._lock = threading.Lock()  # one step at a time
        self._closed = False
        self._session_calls = 0
        self._session_chars = 0
        self._epoch = 0  # one per set_tools: a run; threads of an earlier run may not call tools

    # Life cycle -------------------------------------------------------------------------------
    def start(self) -> KernelProcess:
        """Start a kernel if none is running; SandboxError if one cannot be started."""
        if self._closed:
            raise SandboxError("this kernel client is closed")
        if self.kernel is None:
            self.kernel = self._boot()
        return self.kernel

    def set_tools(self, tools: Mapping[str, Tool]) -> None:
        if "final_answer" in tools:
            raise ConfigError("`final_answer` is built into the sandbox; rename your tool")
        self.dispatcher.set_tools(tools)
        self._definitions = tool_definitions(tools)
        self._epoch += 1
        if self.kernel is not None:
            try:
                self.kernel.channel.send({"op": "tools", "tools": self._definitions}, timeout=_SEND_TIMEOUT)
            except (BridgeClosed, FrameError):
                self._discard()  # the next execute starts a fresh kernel with these tools

    def restart(self) -> KernelProcess:
        self._discard()
        return self.start()

    def close(self) -> None:
        """Kill the kernel; no new one will be started. Safe from another thread mid-step."""
        self._closed = True
        self._discard()
        self.dispatcher.close()

    def _boot(self) -> KernelProcess:
        kernel = self.launch()
        try:
            hello = kernel.channel.recv(self.start_timeout)
            if hello is None:
                raise SandboxError(f"the kernel did not start within {self.start_timeout:g} s")
            if hello.get("op") != "hello":
                raise SandboxError("the kernel did not greet the host as expected")
            hello = {
                "op": "hello",
                "pid": hello.get("pid") if type(hello.get("pid")) is int else None,
                "python": str(hello.get("python"))[:40],
            }
            kernel.channel.send({"op": "tools", "tools": self._definitions}, timeout=_SEND_TIMEOUT)
        except SandboxError as exc:
            reason = kernel.exit_reason(wait=0.5) if isinstance(exc, BridgeClosed) else None
            stderr = kernel.stderr_text().strip()
            kernel.kill()
            detail = f"the kernel {reason}" if reason else str(exc)
            raise SandboxError(
                f"cannot start the kernel: {detail}" + (f"\n{stderr}" if stderr else "")
            ) from None
        self.kernel_info = hello
        return kernel

    def _discard(self) -> None:
        if self.kernel is not None:
            self.kernel.kill()
            self.kernel = None

    # Running code -----------------------------------------------------------------------------
    def execute(self, code: str, *, timeout: float | None = None) -> Execution:
        """Run `code`; errors in it, timeouts and kernel crashes all come back as an Execution."""
        kernel = self.start()
        self._exec_id += 1
        started = time.monotonic()
        calls: list[ToolCallRecord] = []
        try:
            with self._lock:
                return self._run(kernel, code, timeout, started, calls)
        except (BridgeClosed, FrameError) as exc:
            return self._crashed(kernel, exc, started, calls)
        except KeyboardInterrupt:
            self._settle(kernel)  # Ctrl-C on the host stops the step, not the kernel's state
            raise
        except BaseException:
            self._discard()  # a host-side failure mid-step (a listener raised): state unknown
            raise

    def _run(
        self,
        kernel: KernelProcess,
        code: str,
        timeout: float | None,
        started: float,
        calls: list[ToolCallRecord],
    ) -> Execution:
        exec_id = self._exec_id
        kernel.channel.send(
            {
                "op": "exec",
                "id": exec_id,
                "epoch": self._epoch,
                "code": code,
                "max_output": self.max_output_chars,
                "imports": None if self.authorized_imports is None else list(self.authorized_imports),
            },
            timeout=_SEND_TIMEOUT,
        )
        step = _StepCalls(timeout=timeout, deadline=None if timeout is None else started + timeout)
        while True:
            # The deadline is checked before every frame, not only when the kernel goes quiet:
            # a stream of valid frames must not hold the step past its limit.
            now = time.monotonic()
            step.stop_if_due(kernel, now)
            if step.stopped_at is not None:
                wait: float | None = step.stopped_at + self.interrupt_grace - now
                if wait is not None and wait <= 0:
                    return self._killed(kernel, timeout, started, calls)
            else:
                wait = None if step.deadline is None else step.deadline - now
            frame = kernel.channel.recv(wait)
            if frame is None:
                continue
            op = frame["op"]
            if op == "call":
                try:
                    record = self._serve_call(kernel, frame, exec_id, step)
                except _Stalled:  # the kernel sends calls but does not read the replies
                    return self._killed(kernel, timeout, started, calls)
                if record is not None:
                    calls.append(record)
            elif op == "done":
                if frame.get("id") == exec_id:
                    execution = self._execution(frame, timeout, started, calls, step.stopped_at is not None)
                    return step.noted(execution)
                if not (type(frame.get("id")) is int and frame["id"] < exec_id):
                    raise FrameError("a `done` frame for a step that was never sent")
                # else: a stale or forged reply to an earlier step; skip it
            else:
                raise FrameError(f"an unexpected {truncate_middle(op, 40)!r} frame")

    def _serve_call(
        self, kernel: KernelProcess, frame: dict[str, Any], exec_id: int, step: _StepCalls
    ) -> ToolCallRecord | None:
        """Answer one `call` frame; the record of the call if a tool was called."""
        call_id = frame.get("id")
        if type(call_id) is not int:
            raise FrameError("a `call` frame without an integer id")
        self._call_in_flight = call_id
        refusal = self._refusal(frame, exec_id, step)
        if refusal is not None:
            step.refused(refusal[0])
            self._reply(kernel, {"op": "raise", "id": call_id, "type": refusal[0], "message": refusal[1]}, step)
            return None
        name, args, kwargs = frame["name"], frame["args"], frame["kwargs"]
        limits = self.limits
        keep = min(
            limits.max_argument_chars,
            limits.max_argument_chars_per_step - step.chars,
            limits.max_argument_chars_per_session - self._session_chars,
        )
        wait = step.time_left()
        if limits.tool_timeout is not None:
            wait = limits.tool_timeout if wait is None else min(wait, limits.tool_timeout)
        step.calls += 1
        self._session_calls += 1
        outcome = self.dispatcher.call(
            name,
            [from_kernel(a) for a in args],
            {k: from_kernel(v) for k, v in kwargs.items()},
            timeout=wait,
            keep_chars=None if kernel.channel.last_size <= keep else keep,  # a small frame: small arguments
        )
        # A tool the step's limit cut short: interrupt before replying, so the kernel stops
        # as soon as the reply lands, and reports the step as interrupted.
        step.stop_if_due(kernel, time.monotonic())
        used = min(kernel.channel.last_size, max(keep, 0) + 1_000)
        step.chars += used
        self._session_chars += used
        reply: dict[str, Any] = {"op": "return", "id": call_id}
        try:
            if not outcome.ok:
                raise _ToolFailed
            reply.update(to_kernel(outcome.value))
            data = encode_frame(reply)
        except _ToolFailed:
            message = truncate_middle(outcome.error_message, self.max_output_chars)
            data = encode_frame({"op": "raise", "id": call_id, "type": outcome.error_type, "message": message})
        except (UnsendableValue, FrameError) as exc:
            message = f"{name}() returned a value that cannot be sent into the sandbox: {exc}"
            data = encode_frame({"op": "raise", "id": call_id, "type": "TypeError", "message": message})
        self._reply(kernel, data, step)
        return outcome.record

    def _refusal(self, frame: dict[str, Any], exec_id: int, step: _StepCalls) -> tuple[str, str] | None:
        """Why this call is answered with an error instead of a tool: (type, message), or None."""
        name, args, kwargs = frame.get("name"), frame.get("args"), frame.get("kwargs")
        if frame.get("exec") != exec_id:
            return "RuntimeError", (
                "this tool call was made in an earlier step, by a thread that outlived it; "
                "tools answer only the step that is running"
            )
        if step.stopped_at is not None:
            return "TimeoutError", f"the step reached its {step.timeout:g} s time limit; no more tool calls"
        if not (
            isinstance(name, str)
            and 0 < len(name) <= 200
            and isinstance(args, list)
            and isinstance(kwargs, dict)
            and TAG not in kwargs
        ):
            return "TypeError", "a malformed tool call (name, args or kwargs of the wrong type)"
        limits = self.limits
        if step.calls >= limits.max_calls_per_step:
            return "PermissionError", (
                f"this step reached its limit of {limits.max_calls_per_step:,} tool calls (max_calls_per_step)"
            )
        if self._session_calls >= limits.max_calls_per_session:
            return "PermissionError", (
                f"this sandbox reached its limit of {limits.max_calls_per_session:,} tool calls "
                "(max_calls_per_session)"
            )
        return None

    def _reply(self, kernel: KernelProcess, reply: dict[str, Any] | bytes, step: _StepCalls) -> None:
        """Send a reply, waiting no longer than the step's time limit and grace allow."""
        data = reply if isinstance(reply, bytes) else encode_frame(reply)
        limit = step.stopped_at or step.deadline
        wait = _SEND_TIMEOUT if limit is None else max(limit + self.interrupt_grace - time.monotonic(), 0.05)
        try:
            kernel.channel.send_bytes(data, timeout=wait)
        except BridgeClosed as exc:
            if isinstance(exc.__cause__, TimeoutError):
                raise _Stalled from exc
            raise
        self._call_in_flight = None

    def _settle(self, kernel: KernelProcess) -> None:
        """The host was interrupted mid-step: interrupt the step too and wait for its end.

        Tool calls in flight or still coming are answered with KeyboardInterrupt. If the step
        does not end within the grace period, the kernel is killed.
        """
        settled = False
        refusal = {"op": "raise", "type": "KeyboardInterrupt", "message": "the host was interrupted"}
        try:
            if self._call_in_flight is not None:
                kernel.channel.send({**refusal, "id": self._call_in_flight}, timeout=1.0)
            kernel.interrupt()
            deadline = time.monotonic() + self.interrupt_grace
            while not settled:
                frame = kernel.channel.recv(deadline - time.monotonic())
                if frame is None:
                    break
                if frame["op"] == "call" and type(frame.get("id")) is int:
                    kernel.channel.send({**refusal, "id": frame["id"]}, timeout=1.0)
                settled = frame["op"] == "done" and frame.get("id") == self._exec_id
        except SandboxError:
            pass
        finally:
            self._call_in_flight = None
            if not settled:
                self._discard()

    # Building results -------------------------------------------------------------------------
    def _execution(
        self,
        frame: dict[str, Any],
        timeout: float | None,
        started: float,
        calls: list[ToolCallRecord],
        interrupted: bool,
    ) -> Execution:
        cap = self.max_output_chars
        stdout, stderr, result = frame.get("stdout"), frame.get("stderr"), frame.get("result")
        if not (
            isinstance(stdout, str)
            and isinstance(stderr, str)
            and (result is None or isinstance(result, str))
        ):
            raise FrameError("a malformed `done` frame")
        error = _exec_error(frame.get("error"), cap)
        timed_out = interrupted and frame.get("interrupted") is True
        if timed_out:
            message = (
                f"the step was interrupted after {timeout:g} s (its time limit); "
                "variables and definitions made before that point are kept"
            )
            # The model reads the traceback: end it with the reason, not a bare KeyboardInterrupt.
            lines = (error.traceback if error is not None else "").rstrip().splitlines()
            if lines and lines[-1].startswith("KeyboardInterrupt"):
                lines.pop()
            error = ExecError("TimeoutError", message, "\n".join([*lines, f"TimeoutError: {message}"]))
        is_final = frame.get("final") is True
        dropped = frame.get("dropped")
        return Execution(
            stdout=_capped(stdout, cap),
            stderr=_capped(stderr, cap),
            result=None if result is None else _capped(result, cap),
            error=error,
            is_final=is_final,
            final_answer=from_kernel(frame.get("final_answer")) if is_final else None,
            timed_out=timed_out,
            duration_s=time.monotonic() - started,
            tool_calls=tuple(calls),
            output_dropped=dropped if type(dropped) is int and dropped > 0 else 0,
        )

    def _killed(
        self, kernel: KernelProcess, timeout: float | None, started: float, calls: list[ToolCallRecord]
    ) -> Execution:
        self._discard()
        restarted = self._restart_quietly()
        message = (
            f"the step ran past its {timeout:g} s time limit and did not stop when interrupted, so the kernel "
            f"was killed{restarted}; all variables, imports and definitions from earlier steps are lost"
        )
        return Execution(
            error=ExecError("TimeoutError", message, ""),
            timed_out=True,
            state_lost=True,
            duration_s=time.monotonic() - started,
            tool_calls=tuple(calls),
        )

    def _crashed(
        self, kernel: KernelProcess, exc: SandboxError, started: float, calls: list[ToolCallRecord]
    ) -> Execution:
        if isinstance(exc, FrameError):
            kind, what = "KernelProtocolError", f"sent a malformed message ({exc})"
        else:
            kind, what = "KernelDied", kernel.exit_reason(wait=1.0) or "closed its connection to the host"
        report = _crash_report(kernel.stderr_text())
        self._discard()
        restarted = self._restart_quietly()
        message = (
            f"the kernel {what} while running this step{restarted}; "
            "all variables, imports and definitions from earlier steps are lost"
        )
        return Execution(
            error=ExecError(kind, message, report),
            state_lost=True,
            duration_s=time.monotonic() - started,
            tool_calls=tuple(calls),
        )

    def _restart_quietly(self) -> str:
        if self._closed:
            return ", and the sandbox was closed"
        try:
            self.start()
        except SandboxError as exc:
            return f", and no fresh kernel could be started ({exc})"
        return ", and a fresh kernel was started"


class _Stalled(Exception):
    """A reply could not be sent in time: the kernel stopped reading its end."""


class _ToolFailed(Exception):
    """The tool raised: its error, not its value, goes back to the kernel."""


class _StepCalls:
    """One step's tool-call accounting: counts, kept argument sizes, and calls refused."""

    def __init__(self, *, timeout: float | None, deadline: float | None) -> None:
        self.timeout = timeout
        self.deadline = deadline
        self.stopped_at: float | None = None
        self.calls = 0
        self.chars = 0
        self.refusals: dict[str, int] = {}

    def stop_if_due(self, kernel: KernelProcess, now: float) -> None:
        """Interrupt the kernel once, when the step's deadline has passed."""
        if self.stopped_at is None and self.deadline is not None and now >= self.deadline:
            kernel.interrupt()
            self.stopped_at = now

    def time_left(self) -> float | None:
        return None if self.deadline is None else max(self.deadline - time.monotonic(), 0.0)

    def refused(self, kind: str) -> None:
        self.refusals[kind] = self.refusals.get(kind, 0) + 1

    def noted(self, execution: Execution) -> Execution:
        """The execution with a line in stderr for calls refused by a limit, so the model knows."""
        limited = self.refusals.get("PermissionError", 0)
        if not limited:
            return execution
        note = f"[codeact: {limited:,} tool call(s) refused: the tool-call limit was reached]"
        stderr = execution.stderr + ("\n" if execution.stderr and not execution.stderr.endswith("\n") else "") + note
        return dataclasses.replace(execution, stderr=stderr)


def _exec_error(data: Any, cap: int) -> ExecError | None:
    if data is None:
        return None
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), str) for k in ("type", "message", "traceback")
    ):
        raise FrameError("a malformed error in a `done` frame")
    return ExecError(data["type"][:200], _capped(data["message"], cap), _capped(data["traceback"], cap))


def _capped(text: str, cap: int) -> str:
    """The kernel already truncates; this only guards against one that does not."""
    return text if len(text) <= cap + 100 else truncate_middle(text, cap)


def _crash_report(stderr: str) -> str:
    """The useful lines of a faulthandler report: the fatal error and the action's frames."""
    lines = stderr.splitlines()
    keep = [ln for ln in lines if ln.startswith("Fatal Python error") or '"<step ' in ln]
    return "\n".join(keep[:40])
