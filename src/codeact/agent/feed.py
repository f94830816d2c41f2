"""Tools whose results can come from the log instead of the tool.

Resume and replay re-run recorded code in a live kernel. The code calls its tools again, and
those calls must not reach the real tools a second time (a tool may send an e-mail or charge a
card): `FedTool` stands in for each tool with the same signature and docstring, and a `ToolFeed`
decides per call whether to hand back the recorded result, call the real tool, or refuse.

The feed also runs async tools on the driver's event loop when one is given, so an async tool
can share the loop's clients while the kernel waits in a worker thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from codeact.agent.observation import short, show_call
from codeact.runs.codec import RecordedObject, encode_value
from codeact.runs.limits import Truncated
from codeact.sandbox.base import ToolCallRecord
from codeact.tools.signature import bind_arguments, signature_of
from codeact.tools.tool import Tool

__all__ = ["Divergence", "FedTool", "FeedMode", "ToolFeed", "feed_tools", "stand_in"]

FeedMode = Literal["live", "serve", "strict", "compare"]
"""live: call the tools. serve: recorded results while they match, then live (resume).
strict: recorded results only; anything else is refused (replay). compare: call the tools
and report results that differ from the recording (replay with live tools)."""


@dataclass(frozen=True)
class Divergence:
    """Where a re-run stopped matching its recording."""

    step: int
    what: str
    """"observation", "tool_call", "tool_result", "missing_reply" or "outcome"."""
    expected: str
    actual: str

    def describe(self) -> str:
        return f"step {self.step}: {self.what} differs\n  recorded: {self.expected}\n  replayed: {self.actual}"


class ReplayRefused(Exception):
    """Raised into the model's code when a strict replay meets a tool call it has no record of."""


class ToolFeed:
    """Per-step source of tool results; thread-safe (the bridge calls tools from its thread)."""

    def __init__(
        self,
        *,
        on_divergence: Callable[[Divergence], None] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.on_divergence = on_divergence
        self.loop = loop
        self.mode: FeedMode = "live"
        self.step = 0
        self._queue: list[ToolCallRecord] = []
        self._lock = threading.Lock()

    def load(self, step: int, recorded: Sequence[ToolCallRecord], mode: FeedMode) -> None:
        """Use `recorded` for the calls of `step`'s action, in order, as `mode` says."""
        with self._lock:
            self.step, self.mode, self._queue = step, mode, list(recorded)

    def live(self) -> None:
        with self._lock:
            self.mode, self._queue = "live", []

    def serves(self, tool: Tool, arguments: Mapping[str, Any]) -> bool:
        """Whether the next call, `tool(**arguments)`, will get a recorded result (not the tool)."""
        with self._lock:
            mode, expected = self.mode, (self._queue[0] if self._queue else None)
        if mode == "strict":
            return True  # replay: recorded results or a refusal, never the tool
        if mode != "serve" or expected is None or not _same_call(expected, tool.name, arguments):
            return False
        return not (isinstance(expected.result, Truncated) and expected.error is None)

    def call(self, tool: Tool, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        with self._lock:
            mode, step = self.mode, self.step
            expected = self._queue.pop(0) if self._queue and mode != "live" else None
        if mode == "live":
            return self._live(tool, args, kwargs)
        arguments = _bind(tool, args, kwargs)
        if mode == "compare":
            value = self._live(tool, args, kwargs)
            if expected is None:
                self._diverge(step, "tool_call", "no further tool call", show_call(tool.name, arguments))
            elif not _same_call(expected, tool.name, arguments):
                self._diverge(step, "tool_call", show_call(expected.name, expected.arguments),
                              show_call(tool.name, arguments))
            elif expected.error is None and encode_value(value) != encode_value(expected.result):
                self._diverge(step, "tool_result", f"{tool.name} returned {short(expected.result)}",
                              f"{tool.name} returned {short(value)}")
            return value
        if expected is not None and _same_call(expected, tool.name, arguments):
            if isinstance(expected.result, Truncated) and expected.error is None:
                return self._unservable(step, mode, tool, args, kwargs, expected.result)
            return _recorded(expected)
        wanted = show_call(expected.name, expected.arguments) if expected else "no further tool call"
        self._diverge(step, "tool_call", wanted, show_call(tool.name, arguments))
        if mode == "serve":  # resume: the code went its own way; from here on the tools are live
            self.live()
            return self._live(tool, args, kwargs)
        raise ReplayRefused(
            f"replay has no recorded result for {show_call(tool.name, arguments)} (recorded next: {wanted}); "
            "replay with live tools to call it"
        )

    def _unservable(self, step: int, mode: FeedMode, tool: Tool, args: tuple[Any, ...], kwargs: dict[str, Any],
                    kept: Truncated) -> Any:
        """The log kept only a preview of this result: resume calls the tool again; replay says so."""
        self._diverge(step, "tool_result", f"{tool.name} returned {short(kept)}", "(not served: only a preview was kept)")
        if mode == "serve":
            self.live()
            return self._live(tool, args, kwargs)
        raise ReplayRefused(
            f"the run log kept only a preview of what {tool.name}() returned ({kept.type} of {kept.size:,}); "
            "replay with live tools to call it"
        )

    def _live(self, tool: Tool, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        fn = tool.function
        if self.loop is not None and inspect.iscoroutinefunction(fn) and not _on_loop(self.loop):
            return asyncio.run_coroutine_threadsafe(fn(*args, **kwargs), self.loop).result()
        return tool(*args, **kwargs)

    def _diverge(self, step: int, what: str, expected: str, actual: str) -> None:
        if self.on_divergence is not None:
            self.on_divergence(Divergence(step, what, expected, actual))


class FedTool(Tool):
    """Stands in for `tool` (same name, signature and docstring); calls go through the feed."""

    def __init__(self, tool: Tool, feed: ToolFeed) -> None:
        self.name = tool.name
        self.description = tool.description
        self.tool = tool
        self.feed = feed
        original = tool.function
        self.secrets = getattr(tool, "secrets", None)

        @functools.wraps(original)
        def call(*args: Any, **kwargs: Any) -> Any:
            return feed.call(tool, args, kwargs)

        self._call = call

    @property
    def function(self) -> Callable[..., Any]:
        return self._call

    def approval_needed(self, arguments: Mapping[str, Any]) -> bool:
        """A call served from the log runs nothing, so it needs no approval; a live one does."""
        return self.tool.approval_needed(arguments) and not self.feed.serves(self.tool, arguments)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(*args, **kwargs)


def feed_tools(tools: Mapping[str, Tool], feed: ToolFeed) -> dict[str, Tool]:
    return {name: FedTool(t, feed) for name, t in tools.items()}


def _recorded(record: ToolCallRecord) -> Any:
    if record.error is not None:
        kind, _, message = record.error.partition(": ")
        error_type = type(kind if kind.isidentifier() else "ToolError", (Exception,), {})
        raise error_type(message)
    if isinstance(record.result, RecordedObject):
        return stand_in(record.result)
    return record.result


def stand_in(recorded: RecordedObject) -> Any:
    """An object the sandbox receives as it received the recorded one, whose class this process
    cannot rebuild: the same type name and repr, and the same shown fields for a record type."""
    module, _, qualname = recorded.type.rpartition(".")
    name = qualname.rpartition(".")[2] or "object"
    text = recorded.repr
    namespace: dict[str, Any] = {"__repr__": lambda self: text, "__module__": module or "builtins"}
    kind: type
    try:
        if recorded.fields is not None:
            kind = dataclasses.make_dataclass(name, list(recorded.fields), namespace=namespace, repr=False, eq=False)
            kind.__module__, kind.__qualname__ = module or "builtins", qualname
            return kind(**recorded.fields)
    except (TypeError, ValueError):  # field names that are not identifiers: the repr must do
        pass
    kind = type(name, (), namespace)
    kind.__qualname__ = qualname
    return kind()


def _bind(tool: Tool, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The arguments as the dispatcher records them (the tools' one binder), for comparison."""
    try:
        return bind_arguments(signature_of(tool), args, kwargs)
    except TypeError:  # arguments that do not fit: the call fails in the tool; compare them as given
        return bind_arguments(None, args, kwargs)


def _same_call(record: ToolCallRecord, name: str, arguments: Mapping[str, Any]) -> bool:
    """Whether the call is the recorded one, as far as the record kept its arguments (a large
    argument is kept as a preview, by the bridge or the log)."""
    if record.name != name:
        return False
    if encode_value(dict(record.arguments)) == encode_value(dict(arguments)):
        return True
    return _kept_as(record.arguments, dict(arguments), 0)


_NOT_KEPT = re.compile(r"\[\.\.\. ([\d,]+) (?:characters|bytes) not kept \.\.\.\]$")


def _kept_as(kept: Any, value: Any, depth: int) -> bool:
    """Whether `kept` is `value`, or a preview of it (a Truncated, or a cut with a marker)."""
    if depth > 64:
        return False
    if isinstance(kept, Truncated):
        size = len(value) if isinstance(value, (str, bytes, list, tuple, dict, set, frozenset)) else None
        return size is None or kept.size in (0, size)
    if isinstance(kept, (str, bytes)) and isinstance(value, (str, bytes)) and type(kept) is type(value):
        text = kept.decode("latin-1") if isinstance(kept, bytes) else kept
        match = _NOT_KEPT.search(text)
        if match is None:
            return kept == value
        head = kept[: len(kept) - len(match.group(0))]
        return value[: len(head)] == head and len(value) - len(head) == int(match.group(1).replace(",", ""))
    if isinstance(kept, Mapping) and isinstance(value, Mapping):
        if "..." in kept and "..." not in value:  # "[... N more items not kept ...]"
            keys = [k for k in kept if k != "..."]
            return all(k in value and _kept_as(kept[k], value[k], depth + 1) for k in keys)
        return kept.keys() == value.keys() and all(_kept_as(kept[k], value[k], depth + 1) for k in kept)
    if isinstance(kept, (list, tuple, set, frozenset)) and isinstance(value, (list, tuple, set, frozenset)):
        kept_items, items = list(kept), list(value)
        if kept_items and isinstance(kept_items[-1], str) and kept_items[-1].endswith("more items not kept ...]"):
            kept_items = kept_items[:-1]
            items = items[: len(kept_items)]
        return len(kept_items) == len(items) and all(_kept_as(a, b, depth + 1) for a, b in zip(kept_items, items))
    return bool(encode_value(kept) == encode_value(value))


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
