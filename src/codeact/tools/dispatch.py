"""Calling host tools by name, with policies and a listener: the host side of every tool call.

Both the kernel bridge (tools called from sandboxed code) and the tool-calling agent (native
tool calls) go through a `ToolDispatcher`, so policy, recording and error shapes are the same.

A call may need approval first (a tool marked `needs_approval`, or a policy answering `ASK`):
the dispatcher asks the approver (see `approval`) and holds the call until it decides; the
caller's `hold` context covers the wait, so the bridge can pause the step's clock meanwhile.

A call may have a time limit: the tool then runs in a worker thread and the caller stops
waiting at the limit (Python cannot stop a thread, so the tool keeps running in the
background until it returns; its late result is dropped). Records keep a bounded preview of
the arguments when asked to (`keep_chars`), so a 50 MB argument is not kept twice.
"""

from __future__ import annotations

import difflib
import inspect
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from codeact.tools._thread import ToolThread
from codeact.tools.approval import (
    ASK,
    ApprovalDecision,
    ApprovalListener,
    Approver,
    ask_approver,
    make_request,
)
from codeact.tools.calls import ToolCallRecord, ToolListener
from codeact.tools.signature import bind_arguments, signature_of
from codeact.tools.tool import Tool

__all__ = ["ToolDispatcher", "ToolOutcome", "ToolPolicy", "preview_arguments"]

_PREVIEW_FLOOR = 200  # characters a record keeps even when the budget is spent
_APPROVAL_PREVIEW = 20_000  # characters of the arguments an approver is shown, at most
Hold = Callable[[], AbstractContextManager[Any]]
"""What the caller wraps around a wait for approval (the bridge pauses the step's clock)."""


@runtime_checkable
class _HasAllow(Protocol):
    def allow(self, name: str, arguments: Mapping[str, Any]) -> bool | str | None: ...


class ToolPolicy(_HasAllow, Protocol):
    """Decides whether a tool call may run: True (or None) allows, False or a reason denies,
    and `ASK` ("ask") sends the call to the approver.

    A plain function `(name, arguments) -> bool | str | None` works as a policy too.
    """


@dataclass(frozen=True)
class ToolOutcome:
    """One tool call's result: a value, or an error (type name and message) for the caller's code."""

    record: ToolCallRecord
    value: Any = None
    error_type: str | None = None
    error_message: str = ""

    @property
    def ok(self) -> bool:
        return self.error_type is None


class ToolDispatcher:
    """Calls host tools by name, applying policies and telling a listener about every call.

    Tool errors never raise out of `call`; they come back in the outcome, as the model's code
    will see them.
    """

    def __init__(
        self,
        tools: Mapping[str, Tool] | None = None,
        *,
        listener: ToolListener | None = None,
        policies: Sequence[ToolPolicy | Callable[[str, Mapping[str, Any]], bool | str | None]] = (),
        approver: Approver | None = None,
        approval_timeout: float | None = 300.0,
        approval_listener: ApprovalListener | None = None,
    ) -> None:
        self.listener = listener
        self.policies = list(policies)
        self.approver = approver
        """Decides calls that need approval; None denies them (see `codeact.tools.approval`)."""
        self.approval_timeout = approval_timeout
        """Seconds a call waits for a decision before it is denied; None: no limit."""
        self.approval_listener = approval_listener
        """Told about each request and its decision (the agent logs them as events)."""
        self.approval_context: Callable[[], tuple[str | None, int | None]] | None = None
        """(run id, step) for requests, from whoever runs the calls now (the agent)."""
        self.calls = 0
        self._worker: ToolThread | None = None
        self._tools: dict[str, Tool] = {}
        self._signatures: dict[str, inspect.Signature | None] = {}
        self.set_tools(tools or {})

    @property
    def tools(self) -> Mapping[str, Tool]:
        return dict(self._tools)

    def set_tools(self, tools: Mapping[str, Tool]) -> None:
        self._tools = dict(tools)
        self._signatures = {}
        for name, t in self._tools.items():
            self._signatures[name] = signature_of(t)  # None: a callable inspect cannot read, called unchecked

    def concurrent(self, name: str) -> bool:
        """Whether calls to `name` may run alongside other calls (see `Tool.concurrent`)."""
        return bool(getattr(self._tools.get(name), "concurrent", False))

    def close(self) -> None:
        """Let the worker thread end (a tool it is running still finishes)."""
        if self._worker is not None:
            self._worker.retire()
            self._worker = None

    def add_policy(self, policy: ToolPolicy | Callable[[str, Mapping[str, Any]], bool | str | None]) -> None:
        self.policies.append(policy)

    def call(
        self,
        name: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        keep_chars: int | None = None,
        notify: bool = True,
        hold: Hold | None = None,
    ) -> ToolOutcome:
        """Run tool `name` with the arguments as the code passed them.

        Args:
            timeout: seconds to wait for the tool (None: as long as it takes).
            keep_chars: the record keeps at most about this many characters of the arguments
                (None: all of them).
            notify: tell the listener (the bridge tells it itself, once it knows the call
                was not abandoned).
            hold: a context wrapped around a wait for approval (the bridge pauses the step's
                clock in it).
        """
        kwargs = dict(kwargs or {})
        self.calls += 1
        started = time.perf_counter()
        tool = self._tools.get(name)
        arguments: dict[str, Any] = dict(kwargs)
        if tool is None:
            name = name[:200]  # it came from untrusted code: bounded before it is matched or kept
            close = difflib.get_close_matches(name, self._tools, n=1) if len(name) <= 64 else []
            hint = (
                f"; did you mean `{close[0]}`?"
                if close
                else f"; available: {', '.join(sorted(self._tools)) or 'none'}"
            )
            return self._finish(
                name, arguments, started, keep_chars, notify, error=("NameError", f"there is no tool named `{name}`{hint}")
            )
        try:
            arguments = bind_arguments(self._signatures.get(name), args, kwargs)
        except TypeError as exc:
            return self._finish(name, arguments, started, keep_chars, notify, error=("TypeError", f"{name}(): {exc}"))
        verdict, reason = self._verdict(name, arguments)
        if verdict == "deny":
            return self._finish(
                name,
                arguments,
                started,
                keep_chars,
                notify,
                error=("PermissionError", f"the call to `{name}` was denied: {reason}"),
            )
        if verdict == "ask" or tool.approval_needed(arguments):
            asked = time.perf_counter()
            approved = self._approved(tool, arguments, reason or f"`{name}` needs approval", keep_chars, hold)
            started += time.perf_counter() - asked  # the record's duration is the tool's, not the wait
            if isinstance(approved, str):
                return self._finish(name, arguments, started, keep_chars, notify, error=("PermissionError", approved))
            if approved is not None:
                arguments, args, kwargs = approved
        try:
            value = tool(*args, **kwargs) if timeout is None else self._worker_call(tool, args, kwargs, timeout)
        except _Abandoned:
            message = (
                f"`{name}` did not return within {max(timeout or 0.0, 0.0):.3g} s (what was left of the time "
                "limit); it was abandoned and may still be running on the host"
            )
            return self._finish(name, arguments, started, keep_chars, notify, error=("TimeoutError", message))
        except Exception as exc:  # noqa: BLE001 - a tool failure is the calling code's to handle
            return self._finish(name, arguments, started, keep_chars, notify, error=(type(exc).__name__, str(exc)))
        return self._finish(name, arguments, started, keep_chars, notify, value=value)

    def _worker_call(self, tool: Tool, args: Sequence[Any], kwargs: Mapping[str, Any], timeout: float) -> Any:
        """`tool(*args, **kwargs)` in the worker thread, waiting at most `timeout` seconds."""
        if timeout <= 0:
            raise _Abandoned
        worker = self._worker
        if worker is None or not worker.alive:
            worker = self._worker = ToolThread("codeact-tool")
        job = _Job(tool, args, kwargs)
        worker.submit(job)
        if not job.done.wait(timeout):
            worker.retire()  # the next call gets a fresh worker; this one ends after the tool
            self._worker = None
            raise _Abandoned
        if job.error is not None:
            raise job.error
        return job.value

    def _verdict(self, name: str, arguments: Mapping[str, Any]) -> tuple[str, str]:
        """("allow", ""), ("deny", reason), or ("ask", reason) when a policy wants approval.

        A denial wins over an ask: every policy is heard before the approver is bothered."""
        ask = ""
        for policy in self.policies:
            verdict = (
                policy.allow(name, arguments) if isinstance(policy, _HasAllow) else policy(name, arguments)
            )
            if verdict is True or verdict is None:
                continue
            if verdict == ASK:
                ask = ask or f"a policy asks for approval of `{name}`"
                continue
            return "deny", verdict if isinstance(verdict, str) and verdict else "not allowed by policy"
        return ("ask", ask) if ask else ("allow", "")

    def _approved(
        self, tool: Tool, arguments: dict[str, Any], reason: str, keep_chars: int | None, hold: Hold | None
    ) -> str | tuple[dict[str, Any], Sequence[Any], dict[str, Any]] | None:
        """Ask the approver: None (approved as is), the edited call (arguments, args, kwargs), or
        the message of a denial."""
        run_id, step = self.approval_context() if self.approval_context is not None else (None, None)
        shown = preview_arguments(arguments, min(keep_chars or _APPROVAL_PREVIEW, _APPROVAL_PREVIEW))
        request = make_request(tool, shown, reason=reason, timeout_s=self.approval_timeout, run_id=run_id, step=step)
        self._tell_approval(request, None)
        with hold() if hold is not None else nullcontext():
            decision = ask_approver(self.approver, request)
        edited = None
        if decision.verdict == "edit":
            edited = self._edited(tool, decision.arguments or {})
            if isinstance(edited, str):
                decision = ApprovalDecision("deny", edited, decision.arguments, decision.by)
        self._tell_approval(request, decision)
        if decision.verdict == "deny":
            who = f" by {decision.by}" if decision.by else ""
            return f"the call to `{tool.name}` was denied{who}" + (f": {decision.message}" if decision.message else "")
        return edited if isinstance(edited, tuple) else None

    def _edited(
        self, tool: Tool, edited: Mapping[str, Any]
    ) -> str | tuple[dict[str, Any], Sequence[Any], dict[str, Any]]:
        """The approver's arguments as a call that fits the tool, or why they do not."""
        name = tool.name
        signature = self._signatures.get(name)
        try:
            if signature is None:
                rest = dict(edited)
                args = list(rest.pop("*args", []))
                return bind_arguments(None, args, rest), args, rest
            unknown = [str(k)[:100] for k in edited if k not in signature.parameters]
            if unknown:
                raise TypeError(f"no parameter named {', '.join(unknown)}")
            call = inspect.BoundArguments(signature, dict(edited))  # type: ignore[arg-type]
            args, kwargs = list(call.args), dict(call.kwargs)
            arguments = bind_arguments(signature, args, kwargs)
        except (TypeError, ValueError) as exc:
            return f"the edited arguments do not fit `{name}`: {exc}"[:2_000]
        verdict, reason = self._verdict(name, arguments)
        if verdict == "deny":
            return f"the edited arguments are not allowed: {reason}"
        return arguments, args, kwargs

    def _tell_approval(self, request: Any, decision: ApprovalDecision | None) -> None:
        if self.approval_listener is not None:
            self.approval_listener(request, decision)

    def _finish(
        self,
        name: str,
        arguments: dict[str, Any],
        started: float,
        keep_chars: int | None,
        notify: bool,
        *,
        value: Any = None,
        error: tuple[str, str] | None = None,
    ) -> ToolOutcome:
        if keep_chars is not None:
            arguments = preview_arguments(arguments, keep_chars)
        record = ToolCallRecord(
            name=name,
            arguments=arguments,
            result=value,
            error=None if error is None else f"{error[0]}: {error[1]}",
            duration_s=time.perf_counter() - started,
        )
        if notify and self.listener is not None:
            self.listener(record)
        if error is None:
            return ToolOutcome(record, value)
        return ToolOutcome(record, None, error[0], error[1])


def preview_arguments(arguments: Mapping[str, Any], budget: int) -> dict[str, Any]:
    """`arguments` with long strings, bytes and containers cut so about `budget` characters remain.

    What was cut is said in place (`[... 52,428,800 characters not kept ...]`), so a record
    never looks complete when it is not. Small arguments come back unchanged (and uncopied).
    """
    state = [max(budget, _PREVIEW_FLOOR)]
    if _small(arguments, state[0]):
        return dict(arguments)
    return {str(k)[:200]: _preview(v, state) for k, v in arguments.items()}


def _small(value: Any, budget: int) -> bool:
    """Whether `value` is certainly within `budget` characters, judged cheaply (no full walk)."""
    stack = [value]
    seen = 0
    while stack:
        item = stack.pop()
        if isinstance(item, (str, bytes, bytearray)):
            seen += len(item) + 2
        elif isinstance(item, Mapping):
            seen += 2 * len(item) + 2
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            seen += len(item) + 2
            stack.extend(item)
        else:
            seen += 8
        if seen > budget:
            return False
    return True


def _preview(value: Any, state: list[int]) -> Any:
    if isinstance(value, (str, bytes, bytearray)):
        keep = max(state[0], 0)
        state[0] -= min(len(value), keep) + 2
        if len(value) <= keep:
            return value
        head = value[: keep // 2 + 1] if keep else value[:0]
        if isinstance(head, str):
            return f"{head}[... {len(value) - len(head):,} characters not kept ...]"
        return bytes(head) + f"[... {len(value) - len(head):,} bytes not kept ...]".encode()
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for i, (k, v) in enumerate(value.items()):
            if state[0] <= 0:
                out["..."] = f"[... {len(value) - i:,} more items not kept ...]"
                break
            state[0] -= 2
            out[_preview(k, state) if isinstance(k, str) else k] = _preview(v, state)
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        items: list[Any] = []
        for i, v in enumerate(value):
            if state[0] <= 0:
                items.append(f"[... {len(value) - i:,} more items not kept ...]")
                break
            state[0] -= 1
            items.append(_preview(v, state))
        return items if isinstance(value, list) or len(items) < len(value) else type(value)(items)
    state[0] -= 8
    return value


class _Abandoned(Exception):
    """The caller stopped waiting for a tool."""


class _Job:
    __slots__ = ("args", "done", "error", "kwargs", "tool", "value")

    def __init__(self, tool: Tool, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        self.tool, self.args, self.kwargs = tool, args, kwargs
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None

    def __call__(self) -> None:
        try:
            self.value = self.tool(*self.args, **self.kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, who re-raises it
            self.error = exc
        finally:
            self.done.set()
