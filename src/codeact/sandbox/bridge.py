"""The host end of the bridge: kernel processes, and the client that drives them.

Tool calls from the kernel go to a `codeact.tools.dispatch.ToolDispatcher`. `KernelProcess` is one running kernel (spawned here, or handed over by
a zygote). `KernelClient` runs code in kernels: it serves tool calls, enforces timeouts with
SIGINT then SIGKILL, and replaces a kernel that dies, so every sandbox shares one recovery path
and differs only in how it launches kernels.
"""

from __future__ import annotations

import inspect
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from codeact.errors import ConfigError, SandboxError
from codeact.models.images import Image, find_images
from codeact.sandbox._calls import SEND_TIMEOUT, SessionTally, StepServer, ToolThread
from codeact.sandbox._codec import (
    STEP_IMAGES,
    BridgeClosed,
    FrameChannel,
    FrameError,
    from_kernel,
    images_from_kernel,
)
from codeact.sandbox.base import BridgeLimits, ExecError, Execution
from codeact.sandbox.guest.text import truncate_middle
from codeact.tools.calls import ToolCallRecord
from codeact.tools.dispatch import ToolDispatcher
from codeact.tools.signature import describe_params, signature_of
from codeact.tools.tool import Tool

__all__ = [
    "KERNEL_PATH",
    "KernelClient",
    "KernelProcess",
    "kernel_command",
    "tool_definitions",
]

KERNEL_PATH = Path(__file__).parent / "guest" / "kernel.py"


def tool_definitions(tools: Mapping[str, Tool]) -> list[dict[str, Any]]:
    """What the kernel needs to build a stub per tool: signature parts as text, and the docstring."""
    definitions = []
    for name, t in tools.items():
        signature = signature_of(t)
        returns = inspect.Signature.empty if signature is None else signature.return_annotation
        definitions.append(
            {
                "name": name,
                "signature": t.python_signature(),
                "doc": t.docstring(),
                "params": describe_params(t),
                "returns": None if returns is inspect.Signature.empty else inspect.formatannotation(returns),
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
        self._definitions = tool_definitions(self.dispatcher.tools)
        self._exec_id = 0
        self._lock = threading.Lock()  # one step at a time
        self._closed = False
        self._tally = SessionTally()
        self._tools: ToolThread | None = None  # the thread that runs host tools (see _calls.py)
        self._server: StepServer | None = None
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
                self.kernel.channel.send({"op": "tools", "tools": self._definitions}, timeout=SEND_TIMEOUT)
            except (BridgeClosed, FrameError):
                self._discard()  # the next execute starts a fresh kernel with these tools

    def set_authorized_imports(self, names: Collection[str] | None) -> None:
        """The modules model code may import from the next step on (None: any); see `Sandbox`."""
        self.authorized_imports = None if names is None else tuple(names)

    def close(self) -> None:
        """Kill the kernel; no new one will be started. Safe from another thread mid-step."""
        self._closed = True
        self._discard()
        self.dispatcher.close()
        if self._tools is not None:
            self._tools.retire()
            self._tools = None

    def _boot(self) -> KernelProcess:
        kernel = self.launch()
        try:
            hello = kernel.channel.recv(self.start_timeout)
            if hello is None:
                raise SandboxError(f"the kernel did not start within {self.start_timeout:g} s")
            if hello.get("op") != "hello":
                raise SandboxError("the kernel did not greet the host as expected")
            kernel.channel.send({"op": "tools", "tools": self._definitions}, timeout=SEND_TIMEOUT)
        except SandboxError as exc:
            reason = kernel.exit_reason(wait=0.5) if isinstance(exc, BridgeClosed) else None
            stderr = kernel.stderr_text().strip()
            kernel.kill()
            detail = f"the kernel {reason}" if reason else str(exc)
            raise SandboxError(
                f"cannot start the kernel: {detail}" + (f"\n{stderr}" if stderr else "")
            ) from None
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
        server = self._server = StepServer(
            kernel,
            exec_id=self._exec_id,
            timeout=timeout,
            started=started,
            dispatcher=self.dispatcher,
            limits=self.limits,
            tally=self._tally,
            grace=self.interrupt_grace,
            max_output_chars=self.max_output_chars,
        )
        try:
            with self._lock:
                return self._run(kernel, code, server, started)
        except (BridgeClosed, FrameError) as exc:
            return self._crashed(kernel, exc, started, server.records)
        except KeyboardInterrupt:
            self._settle(kernel, server)  # Ctrl-C on the host stops the step, not the kernel's state
            raise
        except BaseException:
            self._discard()  # a host-side failure mid-step (a listener raised): state unknown
            raise
        finally:
            if server.abandoned and self._tools is not None:
                self._tools.retire()  # it is stuck in the tool; the next call gets a new thread
                self._tools = None

    def _run(self, kernel: KernelProcess, code: str, server: StepServer, started: float) -> Execution:
        kernel.channel.send(
            {
                "op": "exec",
                "id": server.exec_id,
                "epoch": self._epoch,
                "code": code,
                "max_output": self.max_output_chars,
                "imports": None if self.authorized_imports is None else list(self.authorized_imports),
            },
            timeout=SEND_TIMEOUT,
        )
        timeout = server.timeout
        while True:
            # The deadline is checked before every frame, not only when the kernel goes quiet:
            # a stream of valid frames must not hold the step past its limit.
            now = time.monotonic()
            server.stop_if_due(now)
            if server.stopped_at is not None and now >= server.stopped_at + self.interrupt_grace:
                return self._killed(kernel, timeout, started, server.records)
            if server.worker_reads:  # tools are running on the worker; it has the bridge
                outcome = server.wait(server.wake_time())
                if outcome is None:
                    continue
                kind, value = outcome
                if kind == "done":
                    return server.noted(self._execution(value, timeout, started, server))
                if kind == "stalled":  # the kernel sends calls but does not read the replies
                    return self._killed(kernel, timeout, started, server.records)
                if kind == "error":
                    raise value
                if kind == "abandoned" and self._tools is not None:
                    self._tools.retire()  # it is stuck in the tool; a next call gets a new thread
                    self._tools = None
                continue
            if server.stopped_at is not None:
                wait: float | None = server.stopped_at + self.interrupt_grace - now
            else:
                wait = None if server.deadline is None else server.deadline - now
            frame = kernel.channel.recv(wait)
            if frame is None:
                continue
            op = frame["op"]
            if op == "call":
                if self._tools is None:
                    self._tools = ToolThread()
                server.hand_off(frame, self._tools)
            elif op == "done":
                if frame.get("id") == server.exec_id:
                    return server.noted(self._execution(frame, timeout, started, server))
                if not (type(frame.get("id")) is int and frame["id"] < server.exec_id):
                    raise FrameError("a `done` frame for a step that was never sent")
                # else: a stale or forged reply to an earlier step; skip it
            else:
                raise FrameError(f"an unexpected {truncate_middle(op, 40)!r} frame")

    def _settle(self, kernel: KernelProcess, server: StepServer) -> None:
        """The host was interrupted mid-step: interrupt the step too and wait for its end.

        Tool calls still coming are answered with KeyboardInterrupt. If the step does not end
        within the grace period (a tool that does not return, a kernel that ignores SIGINT),
        the kernel is killed.
        """
        settled = False
        refusal = {"op": "raise", "type": "KeyboardInterrupt", "message": "the host was interrupted"}
        deadline = time.monotonic() + self.interrupt_grace
        try:
            kernel.interrupt()
            if server.worker_reads:
                server.yield_requested = True
                outcome = None
                while outcome is None and time.monotonic() < deadline:
                    outcome = server.wait(deadline)
                if outcome is None or outcome[0] in ("error", "stalled", "abandoned"):
                    return
                settled = outcome[0] == "done"
            while not settled:
                frame = kernel.channel.recv(deadline - time.monotonic())
                if frame is None:
                    break
                if frame["op"] == "call" and type(frame.get("id")) is int:
                    kernel.channel.send({**refusal, "id": frame["id"]}, timeout=1.0)
                settled = frame["op"] == "done" and frame.get("id") == server.exec_id
        except SandboxError:
            pass
        finally:
            if not settled:
                self._discard()

    # Building results -------------------------------------------------------------------------
    def _execution(self, frame: dict[str, Any], timeout: float | None, started: float, server: StepServer) -> Execution:
        cap = self.max_output_chars
        stdout, stderr, result = frame.get("stdout"), frame.get("stderr"), frame.get("result")
        if not (
            isinstance(stdout, str)
            and isinstance(stderr, str)
            and (result is None or isinstance(result, str))
        ):
            raise FrameError("a malformed `done` frame")
        error = _exec_error(frame.get("error"), cap)
        timed_out = server.stopped_at is not None and frame.get("interrupted") is True
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
        images, notes = _step_images(frame.get("images"), server.records)
        if notes:  # the model reads why an image it showed is missing
            stderr = "\n".join([stderr.rstrip("\n"), *(f"[{note}]" for note in notes)]).lstrip("\n")
        return Execution(
            stdout=_capped(stdout, cap),
            stderr=_capped(stderr, cap),
            result=None if result is None else _capped(result, cap),
            error=error,
            is_final=is_final,
            final_answer=from_kernel(frame.get("final_answer")) if is_final else None,
            timed_out=timed_out,
            duration_s=time.monotonic() - started,
            tool_calls=tuple(server.records),
            output_dropped=dropped if type(dropped) is int and dropped > 0 else 0,
            images=tuple(images),
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


def _step_images(data: Any, records: Sequence[ToolCallRecord]) -> tuple[list[Image], list[str]]:
    """What the step showed: images from `display()` (checked), then images tools returned
    (host tools, e.g. an MCP server's image content), at most `STEP_IMAGES.max_count` in all."""
    images, notes = images_from_kernel(data)
    limit = STEP_IMAGES.max_count
    for record in records:
        for image in find_images(record.result):
            if len(images) < limit:
                images.append(image)
            else:
                notes.append(f"an image from {record.name}() not shown: at most {limit} per step")
    return images, notes


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
