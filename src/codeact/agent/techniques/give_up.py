"""Doubt a give-up answer: a final answer that reports a failure is sent back once.

Read in the 1.5B's runs: after a guessed key failed (`KeyError: 'weight_kg'`) or a filter
matched nothing, it wrapped the same code in a guard and answered with the guard's text:
"Order O-5003 not found or does not have a weight.", "No flights available from Zurich to
Berlin." The data was there each time; the model's own code had missed it. Sent back once,
with the tools' results of that step shown, it may look again; a second such answer goes
through (a task can truly have no answer).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from codeact.agent.techniques.base import Review, returned_in_step
from codeact.runs.result import Step
from codeact.sandbox.base import Execution

__all__ = ["DoubtGiveUp"]

_GIVE_UP = re.compile(
    r"\b(not (found|available|defined|exist)|no \w+( \w+)? (found|available|exists?)|does not (exist|have|contain)"
    r"|doesn't (exist|have)|(could|can)(not|n't) (find|be found|determine|calculate|compute)|unable to|error\b|failed\b)",
    re.IGNORECASE)


@dataclass(frozen=True)
class DoubtGiveUp:
    """Send back, once per run, a text final answer that says something was not found or failed."""

    def review(self, steps: Sequence[Step], code: str | None, execution: Execution) -> Review | None:
        answer = execution.final_answer
        if not execution.is_final or not isinstance(answer, str) or not _GIVE_UP.search(answer[:500]):
            return None
        if any(_REASON in s.observation for s in steps):
            return None  # asked once already
        return Review(reject_answer=_REASON + returned_in_step(execution))


_REASON = ("your answer says something was not found or failed, but the data the task needs is in your tools. "
           "Your code missed it: print what the tools return, find the values there, then answer")
