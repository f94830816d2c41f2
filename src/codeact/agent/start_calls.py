"""Calls made for the model before its first step: the results of tools marked `at_start`.

Reading its runs, the embedded 1.5B computed over data it assumed was there (an `employees` list
it typed out, `open("orders.json")`) while `list_tables()` sat in its function list: a model that
does not know what data exists does not ask. A tool marked `at_start` (a catalogue, a schema, a
listing) is called once, with no arguments, when a run starts, and what it returned goes into the
task message, as if the model had printed it. The message is recorded with the run, so resume and
replay show the model the same text without calling the tool again.

Each result is bounded (`MAX_CHARS`); a tool that raises is shown as its error, and the run goes on.
"""

from __future__ import annotations

from collections.abc import Mapping

from codeact.errors import ConfigError
from codeact.tools.tool import Tool

__all__ = ["MAX_CHARS", "start_calls_note"]

MAX_CHARS = 2_000
"""Characters of one tool's result shown; the rest is cut, with a count."""

HEADER = "Before you start, your functions show:"


def start_calls_note(tools: Mapping[str, Tool]) -> str:
    """Each `at_start` tool called with no arguments, shown as `>>> name()` and its result; "" if none."""
    marked = [t for t in tools.values() if t.at_start]
    if not marked:
        return ""
    shown = [HEADER]
    for tool in marked:
        if tool.approval_needed({}):
            raise ConfigError(f"tool `{tool.name}` is marked at_start but needs approval: a call made before "
                              "the run starts cannot wait for an approver")
        try:
            text = _shown(tool())
        except Exception as exc:  # noqa: BLE001 - the model sees the error, as it would its own call's
            text = _cut(f"Error: {type(exc).__name__}: {exc}")
        shown.append(f">>> {tool.name}()\n{text}")
    return "\n".join(shown)


def _shown(value: object) -> str:
    """What print() would show: a string as it is, anything else as its repr; cut at MAX_CHARS."""
    return _cut(value if isinstance(value, str) else repr(value))


def _cut(text: str) -> str:
    if len(text) <= MAX_CHARS:
        return text
    return f"{text[:MAX_CHARS]}... ({len(text) - MAX_CHARS:,} more characters)"
