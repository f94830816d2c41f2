"""What a tool call leaves behind: its record, and the listener that is told about each one.

These are tool facts, not sandbox facts: the dispatcher makes the records, and the sandbox,
the agent and the run log only pass them on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["ToolCallRecord", "ToolListener"]


@dataclass(frozen=True)
class ToolCallRecord:
    """One call to a host tool (from sandboxed code or a native tool call), as the host saw it.

    `arguments` may be a truncated preview when they were large (see `BridgeLimits`).
    """

    name: str
    arguments: dict[str, Any]
    result: Any = None
    error: str | None = None
    duration_s: float = 0.0


ToolListener = Callable[[ToolCallRecord], None]
"""Told about each call once, as it finishes."""
