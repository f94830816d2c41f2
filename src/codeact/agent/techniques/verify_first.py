"""Verify before answering: a final answer given blind is sent back once, to be looked at first.

A small model often writes one program that calls the tools and `final_answer` together, never
seeing what the tools returned; when it misread a field, the answer is wrong and nothing shows
it. This technique rejects a final answer given before any output of the run was seen (no
earlier step printed or returned anything), once per run. The kernel keeps its variables, so
looking costs one short step: print the values, then answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from codeact.agent.observation import showed_output
from codeact.agent.techniques.base import Review, returned_in_step
from codeact.runs.result import Step
from codeact.sandbox.base import Execution

__all__ = ["VerifyBeforeAnswer"]


@dataclass(frozen=True)
class VerifyBeforeAnswer:
    """Reject a run's first final answer when no output has been seen yet.

    Args:
        only_with_tools: ask only when the action called a tool (a pure computation has nothing
            to misread); False asks for every blind answer.
    """

    only_with_tools: bool = True

    def review(self, steps: Sequence[Step], code: str | None, execution: Execution) -> Review | None:
        if not execution.is_final or any(showed_output(s) for s in steps):
            return None
        if any(s.code is not None and "final answer was rejected" in s.observation for s in steps):
            return None  # asked once already: do not loop
        if self.only_with_tools and not execution.tool_calls:
            return None
        return Review(reject_answer=_REASON + returned_in_step(execution))


_REASON = ("you answered without looking at any output. Your variables are still defined: print the values "
           "your answer rests on (the tools' results), check that they answer exactly what the task asks, "
           "then call final_answer")

