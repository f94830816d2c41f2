"""The unisolated sandbox: the kernel is a plain child process of the host."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Collection, Mapping
from pathlib import Path

from codeact.errors import ConfigError, SandboxError
from codeact.sandbox.base import BridgeLimits, Execution, Sandbox, ToolListener
from codeact.sandbox.bridge import KernelClient, KernelProcess
from codeact.tools.dispatch import ToolDispatcher
from codeact.tools.tool import Tool, to_tools

__all__ = ["ProcessSandbox", "scrubbed_env"]


def scrubbed_env(home: str | os.PathLike[str]) -> dict[str, str]:
    """A minimal environment: the host's variables hold API keys, so none are passed on."""
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONIOENCODING": "utf-8",
    }


class ProcessSandbox(Sandbox):
    """Runs model code in a persistent Python child process. It does NOT isolate anything.

    The code runs as the same user as the host, sees the same filesystem and can use the
    network. What it does give: state that persists between steps, host-side tools, captured
    and capped output, preemptive timeouts, recovery from crashes, and an environment without
    the host's variables (so API keys are not readable from `os.environ`). Use it where you
    trust the code or where the isolated sandbox is unavailable.

    Args:
        timeout: default seconds per `execute` before the step is interrupted.
        max_output_chars: cap for stdout, stderr and the result repr of one step.
        workspace: the kernel's working directory and HOME; a fresh temporary directory,
            removed on close, when not given.
        env: the kernel's environment; defaults to `scrubbed_env(workspace)`.
        python: the interpreter that runs the kernel; defaults to the host's.
        interrupt_grace: seconds a timed-out step gets after SIGINT before the kernel is killed.
        bridge_limits: what the code can make the host do and keep through tool calls
            (`BridgeLimits`: calls per step and session, a tool's own time limit, how much of
            the arguments records keep); default `BridgeLimits()`.
    """

    kind = "process"

    def __init__(
        self,
        *,
        timeout: float = 30.0,
        max_output_chars: int = 20_000,
        workspace: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        python: str | None = None,
        interrupt_grace: float = 2.0,
        bridge_limits: BridgeLimits | None = None,
    ) -> None:
        if not timeout > 0:
            raise ConfigError(f"timeout must be positive, got {timeout!r}")
        if not (isinstance(max_output_chars, int) and max_output_chars > 0):
            raise ConfigError(f"max_output_chars must be a positive int, got {max_output_chars!r}")
        self.timeout = timeout
        self.python = python or sys.executable
        self._workspace = Path(workspace) if workspace is not None else None
        self._owns_workspace = workspace is None
        self._env = dict(env) if env is not None else None
        self._client = KernelClient(
            self._launch,
            dispatcher=ToolDispatcher(),
            max_output_chars=max_output_chars,
            interrupt_grace=interrupt_grace,
            limits=bridge_limits,
        )
        self._closed = False

    @property
    def workspace(self) -> Path:
        """The kernel's working directory (created on first use)."""
        if self._workspace is None:
            self._workspace = Path(tempfile.mkdtemp(prefix="codeact-"))
        return self._workspace

    @property
    def dispatcher(self) -> ToolDispatcher:
        """Runs the tools; add policies here."""
        return self._client.dispatcher

    def start(self, tools: Mapping[str, Tool], *, on_tool_call: ToolListener | None = None) -> None:
        self._check_open()
        self._client.set_tools(to_tools(tools))
        self._client.dispatcher.listener = on_tool_call
        self._client.start()

    def set_authorized_imports(self, names: Collection[str] | None) -> None:
        self._client.set_authorized_imports(names)

    def execute(self, code: str, *, timeout: float | None = None) -> Execution:
        self._check_open()
        if not isinstance(code, str):
            raise ConfigError(f"code must be a str, not {type(code).__name__}")
        return self._client.execute(code, timeout=self.timeout if timeout is None else timeout)

    def close(self) -> None:
        self._client.close()
        if self._owns_workspace and self._workspace is not None:
            shutil.rmtree(self._workspace, ignore_errors=True)
            self._workspace = None
        self._closed = True

    def _launch(self) -> KernelProcess:
        workspace = self.workspace
        workspace.mkdir(parents=True, exist_ok=True)
        env = self._env if self._env is not None else scrubbed_env(workspace)
        return KernelProcess.spawn(python=self.python, cwd=workspace, env=env)

    def _check_open(self) -> None:
        if self._closed:
            raise SandboxError("this ProcessSandbox is closed; create a new one")

    def __repr__(self) -> str:
        return f"ProcessSandbox(workspace={str(self._workspace)!r}, timeout={self.timeout:g})"
