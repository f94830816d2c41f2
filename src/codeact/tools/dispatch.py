"""Calling host tools by name, with policies and a listener: the host side of every tool call.

Both the kernel bridge (tools called from sandboxed code) and the tool-calling agent (native
tool calls) go through a `ToolDispatcher`, so policy, recording and error shapes are the same.
"""

from __future__ import annotations

import difflib
import inspect
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from codeact.sandbox.base import ToolCallRecord, ToolListener
from codeact.tools.tool import Tool

__all__ = ["ToolDispatcher", "ToolOutcome", "ToolPolicy"]


@runtime_checkable
class _HasAllow(Protocol):
    def allow(self, name: str, arguments: Mapping[str, Any]) -> bool | str | None: ...


class ToolPolicy(_HasAllow, Protocol):
    """Decides whether a tool call may run: True (or None) allows, False or a reason denies.

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
    ) -> None:
        self.listener = listener
        self.policies = list(policies)
        self.calls = 0
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
            try:
                self._signatures[name] = t.signature
            except (TypeError, ValueError):  # a callable inspect cannot read: call it unchecked
                self._signatures[name] = None

    def add_policy(self, policy: ToolPolicy | Callable[[str, Mapping[str, Any]], bool | str | None]) -> None:
        self.policies.append(policy)

    def call(
        self, name: str, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None
    ) -> ToolOutcome:
        """Run tool `name` with the arguments as the code passed them."""
        kwargs = dict(kwargs or {})
        self.calls += 1
        started = time.perf_counter()
        tool = self._tools.get(name)
        arguments: dict[str, Any] = dict(kwargs)
        if tool is None:
            close = difflib.get_close_matches(name, self._tools, n=1)
            hint = (
                f"; did you mean `{close[0]}`?"
                if close
                else f"; available: {', '.join(sorted(self._tools)) or 'none'}"
            )
            return self._finish(
                name, arguments, started, error=("NameError", f"there is no tool named `{name}`{hint}")
            )
        signature = self._signatures.get(name)
        if signature is not None:
            try:
                arguments = dict(signature.bind(*args, **kwargs).arguments)
            except TypeError as exc:
                return self._finish(name, arguments, started, error=("TypeError", f"{name}(): {exc}"))
        elif args:
            arguments["*args"] = list(args)
        denial = self._denial(name, arguments)
        if denial is not None:
            return self._finish(
                name,
                arguments,
                started,
                error=("PermissionError", f"the call to `{name}` was denied: {denial}"),
            )
        try:
            value = tool(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - a tool failure is the calling code's to handle
            return self._finish(name, arguments, started, error=(type(exc).__name__, str(exc)))
        return self._finish(name, arguments, started, value=value)

    def _denial(self, name: str, arguments: Mapping[str, Any]) -> str | None:
        for policy in self.policies:
            verdict = (
                policy.allow(name, arguments) if isinstance(policy, _HasAllow) else policy(name, arguments)
            )
            if verdict is True or verdict is None:
                continue
            return verdict if isinstance(verdict, str) and verdict else "not allowed by policy"
        return None

    def _finish(
        self,
        name: str,
        arguments: dict[str, Any],
        started: float,
        *,
        value: Any = None,
        error: tuple[str, str] | None = None,
    ) -> ToolOutcome:
        record = ToolCallRecord(
            name=name,
            arguments=arguments,
            result=value,
            error=None if error is None else f"{error[0]}: {error[1]}",
            duration_s=time.perf_counter() - started,
        )
        if self.listener is not None:
            self.listener(record)
        if error is None:
            return ToolOutcome(record, value)
        return ToolOutcome(record, None, error[0], error[1])
