"""Turning an Execution into the text the model reads next."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from codeact.runs.result import Step
from codeact.sandbox.base import Execution
from codeact.sandbox.guest.text import truncate_middle
from codeact.tools.calls import ToolCallRecord

__all__ = [
    "OUTPUT_SLOT", "TASK_SLOT", "format_observation", "list_tool_results", "quote_output", "quote_task", "short", "show_call", "showed_output",
    "truncate",
]

# The kernel's own cut marker (guest/text.cut_marker) inside stdout or stderr.
_KERNEL_CUT = re.compile(r"\n\[\.\.\. [\d,]+ characters truncated \.\.\.\]\n")


def truncate(text: str, limit: int) -> str:
    """Keep the head (two thirds) and tail of `text` with a marker that says how much was cut;
    80 of `limit` characters are kept for the marker."""
    return truncate_middle(text, limit, head_share=2 / 3, reserve=80)


def format_observation(execution: Execution, *, limit: int = 8_000) -> str:
    """Logs, the last expression's value and any error, in that order, capped at `limit`."""
    parts: list[str] = []
    logs = execution.stdout + (execution.stderr and ("\n" if execution.stdout else "") + execution.stderr)
    if logs.strip():
        parts.append(_LOGS + logs.rstrip())
    if execution.result is not None:
        parts.append("Last output: " + execution.result)
    if execution.error is not None:
        err = execution.error
        parts.append(err.traceback.rstrip() or f"{err.type}: {err.message}")
    if execution.state_lost and (execution.error is None or "lost" not in execution.error.message):
        parts.append("The Python session was restarted: all variables and imports from earlier steps are lost.")
    if not parts and execution.images:  # the images follow the text (or, for text-only models, a note each)
        count = len(execution.images)
        parts.append(f"The code showed {count} image{'s' if count > 1 else ''} (below) and printed nothing.")
    if not parts:
        parts.append(_NO_OUTPUT + " Use print() to see values.")
    text = "\n".join(parts)
    if len(text) <= limit or not execution.output_dropped:
        return truncate(text, limit)
    # The kernel already cut the output; cutting it again here would hide the first cut's marker
    # and report only this cut. Say the real size once, after the text.
    note = f"\n[the step wrote {_output_size(execution):,} characters of output in all; only part is shown]"
    return truncate(text, max(limit - len(note), 0)) + note


_NO_OUTPUT = "The code ran without output."
"""How an observation says a step showed nothing."""


def showed_output(step: Step) -> bool:
    """The step ran code that showed the model something (printed text, a value, or an error) and did not end the run."""
    shown = step.observation.strip()
    return step.code is not None and bool(shown) and not shown.startswith(_NO_OUTPUT) and not step.is_final


OUTPUT_SLOT = "{output}"
"""Where a hint quotes the output of the step before (`NoAction.after_output`)."""

TASK_SLOT = "{task}"
"""Where a technique's review quotes the run's task (`Review.reject_answer`, `Review.note`): a small
model compares an answer with the task when both are in view, not when the task is steps above."""

_LOGS = "Execution logs:\n"


def quote_output(step: Step, limit: int = 1_000) -> str:
    """What a step showed, for quoting back to the model: its observation without the logs heading,
    the middle cut past `limit` characters."""
    shown = step.observation.strip()
    return truncate(shown.removeprefix(_LOGS), limit)


def quote_task(task: str, limit: int = 1_500) -> str:
    """The task in quotes for a review, the middle cut past `limit` characters."""
    return f'"{truncate(task.strip(), limit)}"'


def _output_size(execution: Execution) -> int:
    """How much the step wrote to stdout and stderr, before the kernel's cap."""
    shown = sum(len(_KERNEL_CUT.sub("", s)) for s in (execution.stdout, execution.stderr))
    return shown + execution.output_dropped


def short(value: Any, limit: int = 200) -> str:
    """`repr(value)`, cut to `limit` characters with an ellipsis."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def show_call(name: str, arguments: Mapping[str, Any]) -> str:
    """A tool call as the model would write it, each argument cut to 60 characters."""
    return f"{name}({', '.join(f'{k}={short(v, 60)}' for k, v in arguments.items())})"


def list_tool_results(calls: Sequence[ToolCallRecord], *, most: int = 6, chars: int = 300) -> str:
    """One line per tool call, `name(args) returned value` (or its error), for a note to the model.

    The model may never have printed what its tools returned; this shows it without a tool call.
    At most `most` calls, each result cut to `chars` characters.
    """
    lines = []
    for call in calls[:most]:
        got = f"error: {call.error}" if call.error else short(call.result, chars)
        lines.append(f"{show_call(call.name, call.arguments)} returned {got}")
    if len(calls) > most:
        lines.append(f"... and {len(calls) - most} more calls")
    return "\n".join(lines)
