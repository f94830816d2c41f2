"""The contract between the agent and wherever model code runs: `execute(code) -> Execution`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from codeact.models.base import Usage
from codeact.models.images import Image
from codeact.tools.calls import ToolCallRecord, ToolListener
from codeact.tools.tool import Tool

__all__ = ["BridgeLimits", "ExecError", "Execution", "Sandbox", "ToolCallRecord", "ToolListener"]


@dataclass(frozen=True)
class ExecError:
    """An exception raised by the action code, with its traceback trimmed to that code."""

    type: str
    message: str
    traceback: str


@dataclass(frozen=True)
class BridgeLimits:
    """What one sandbox session can make the host do and keep through tool calls.

    Calls over a count limit are refused (the code gets a PermissionError, the observation a
    note); arguments over a size budget are kept in `ToolCallRecord.arguments` (memory and the
    run log) as a truncated preview, while the tool itself gets them whole.

    Args:
        max_calls_per_step: tool calls one step may make.
        max_calls_per_session: tool calls over the sandbox's life.
        tool_timeout: seconds one tool call may take (None: no own limit). A call is always
            bounded by what is left of the step's time limit too. Python cannot stop a thread:
            a tool that overruns is abandoned (the code gets a TimeoutError) and keeps running
            in a background thread on the host until it returns.
        max_argument_chars: characters of one call's arguments kept in its record.
        max_argument_chars_per_step: the same, for all calls of one step together.
        max_argument_chars_per_session: the same, over the sandbox's life.
    """

    max_calls_per_step: int = 10_000
    max_calls_per_session: int = 100_000
    tool_timeout: float | None = None
    max_argument_chars: int = 20_000
    max_argument_chars_per_step: int = 1_000_000
    max_argument_chars_per_session: int = 20_000_000




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
    output_dropped: int = 0
    """Characters of stdout and stderr the sandbox dropped to keep them under its cap."""
    images: tuple[Image, ...] = ()
    """Images the step showed (`display()` in the code, or a tool's image result), checked and
    bounded by the host; the model sees them with the observation if it reads images."""
    extra_usage: Usage = field(default_factory=Usage)
    """Model tokens the action spent beyond the run's own calls (sub-agents it called); they
    count against the run's budgets."""
    extra_cost: float = 0.0
    """Dollars of `extra_usage`, priced by whoever spent it (each sub-agent with its own model)."""

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
        """Start the kernel with stubs for `tools`. Calling it again replaces the tools.

        `on_tool_call` is the one report of each tool call: a sandbox calls it once per call, as
        the call finishes (the run log writes it then, so resume never makes it again).
        """

    @abstractmethod
    def execute(self, code: str, *, timeout: float | None = None) -> Execution:
        """Run `code` in the kernel; never raises for errors in the code itself."""

    def set_authorized_imports(self, names: Collection[str] | None) -> None:
        """Let model code import only `names` (and their submodules); None allows any.

        A guard rail enforced inside the kernel (import statements, `__import__`,
        `importlib.import_module`), not a boundary: the sandbox is the boundary. Sandboxes
        without such a hook ignore it (this default); the kernel sandboxes override it.
        """
        del names  # nothing to enforce it with here

    @abstractmethod
    def close(self) -> None:
        """Stop the kernel and free its resources. Safe to call twice."""

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
