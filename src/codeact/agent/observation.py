"""Turning an Execution into the text the model reads next."""

from __future__ import annotations

from codeact.sandbox.base import Execution
from codeact.sandbox.guest.text import truncate_middle

__all__ = ["format_observation", "truncate"]


def truncate(text: str, limit: int) -> str:
    """Keep the head (two thirds) and tail of `text` with a marker that says how much was cut;
    80 of `limit` characters are kept for the marker."""
    return truncate_middle(text, limit, head_share=2 / 3, reserve=80)


def format_observation(execution: Execution, *, limit: int = 8_000) -> str:
    """Logs, the last expression's value and any error, in that order, capped at `limit`."""
    parts: list[str] = []
    logs = execution.stdout + (execution.stderr and ("\n" if execution.stdout else "") + execution.stderr)
    if logs.strip():
        parts.append("Execution logs:\n" + logs.rstrip())
    if execution.result is not None:
        parts.append("Last output: " + execution.result)
    if execution.error is not None:
        err = execution.error
        parts.append(err.traceback.rstrip() or f"{err.type}: {err.message}")
    if execution.state_lost and (execution.error is None or "lost" not in execution.error.message):
        parts.append("The Python session was restarted: all variables and imports from earlier steps are lost.")
    if not parts:
        parts.append("The code ran without output. Use print() to see values.")
    return truncate("\n".join(parts), limit)
