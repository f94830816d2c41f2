"""Require tool use: an answer from a run that never called a tool is sent back once.

Read in failed runs of the 0.5B on the travel set: with tools for fares and hotels at hand it
wrote `cost = 100 * 5; final_answer(cost)`, a made-up rate, in its first step. When an agent
has tools, a task given to it nearly always needs them; an answer from a run that called
none is most likely invented. This sends it back once with that said, and lets the second
answer through whatever it is (a task may truly need no tool).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from codeact.agent.techniques.base import Review
from codeact.runs.result import Step
from codeact.sandbox.base import Execution

__all__ = ["RequireToolUse"]


@dataclass(frozen=True)
class RequireToolUse:
    """Reject, once per run, a final answer when no action of the run has called a tool; and,
    once, note after a step that called none while no tool has been called yet.

    Give it only to an agent that has tools (with none, every answer would be sent back once).
    """

    def review(self, steps: Sequence[Step], code: str | None, execution: Execution) -> Review | None:
        if execution.tool_calls or any(s.tool_calls for s in steps):
            return None
        if not execution.is_final:
            # The 1.5B's first step on a hotel question typed out three cities of made-up hotels.
            if code is None or any(_NOTE in s.observation for s in steps):
                return None
            return Review(note=_NOTE)
        if any(_REASON in s.observation for s in steps):
            return None  # said once already
        return Review(reject_answer=_REASON)


_REASON = ("no tool has been called in this task. The facts it needs come from your functions, not from "
           "guesses or placeholder values: call the right ones, print what they return, then answer from it")
_NOTE = ("Note: no tool has been called yet. The data this task needs comes from your functions: call them "
         "and print what they return; do not type out data or placeholder values yourself.")
