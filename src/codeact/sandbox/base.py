"""The contract between the agent and wherever model code runs: `execute(code) -> Execution`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from codeact.tools.tool import Tool

__all__ = ["ExecError", "Execution", "Sandbox", "ToolCallRecord", "ToolListener"]


@dataclass(frozen=True)
class ExecError:
    """An exception raised by the action code, with its traceback trimmed to that code."""

    type: str
    message: str
    traceback: str


@dataclass(frozen=True)
class ToolCallRecord:
    """One call from sandboxed code to a host tool, as the host saw it."""

    name: str
    arguments: dict[str, Any]
    result: Any = None
    error: str | None = None
    duration_s: float = 0.0


ToolListener = Callable[[ToolCallRecord], None]


@dataclass(frozen=True)
class Execution:
    """What running one action produced. Text fields are already truncated to the sandbox's cap."""

    stdout: str = ""
    stderr: str = ""
    result: str | None = None
    """repr() of the value of the last expression, like a notebook cell; None if there was none."""
    error: ExecError | None = None
    is_final: bool = False
    final_answer: Any = None
    timed_out: bool = False
    state_lost: bool = False
    """The kernel was killed or crashed and replaced: variables from earlier steps are gone."""
    duration_s: float = 0.0
    tool_calls: tuple[ToolCallRecord, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.error is None and not self.timed_out and not self.state_lost


class Sandbox(ABC):
    """A persistent Python kernel. State survives between `execute` calls, like a notebook.

    Tools run on the host: the kernel holds stubs that call back over the bridge.
    `final_answer(value)` is always available and ends the action with `is_final=True`.
    """

    #: Short name for reports: "process", "local".
    kind: str = "sandbox"

    @abstractmethod
    def start(self, tools: Mapping[str, Tool], *, on_tool_call: ToolListener | None = None) -> None:
        """Start the kernel with stubs for `tools`. Calling it again replaces the tools."""

    @abstractmethod
    def execute(self, code: str, *, timeout: float | None = None) -> Execution:
        """Run `code` in the kernel; never raises for errors in the code itself."""

    @abstractmethod
    def close(self) -> None:
        """Stop the kernel and free its resources. Safe to call twice."""

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
