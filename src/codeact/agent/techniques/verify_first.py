"""Verify before answering: a final answer given blind is sent back once, beside the task and the data.

A small model often writes one program that calls the tools and `final_answer` together, never
seeing what the tools returned; when it misread a field, the answer is wrong and nothing shows
it. This technique rejects a final answer given before any output of the run was seen (no
earlier step printed or returned anything), once per run, and shows the task, what the tools
returned and the answer together. The kernel keeps its variables, so fixing costs one short step.

Read in the 1.5B's `travel` runs: told only to look and shown the tools' results, it gave the
same answer again (a Zurich average left in CHF where the task asked for EUR). With the task
quoted beside the results it converted in one probe wording ("Does the answer use ..."), not
with this one, and on `records` the question talked it out of a right answer
(benchmarks/results/effectiveness.md, Session 9). Opt-in for that reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from codeact.agent.observation import TASK_SLOT, list_tool_results, short, showed_output
from codeact.agent.techniques.base import Review
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
        returned = list_tool_results(execution.tool_calls)
        seen = f"What your functions returned:\n{returned}\n" if returned else ""
        return Review(reject_answer=(
            f"before answering, compare it with the task. The task: {TASK_SLOT}\n{seen}"
            f"Your answer: {short(execution.final_answer)}. Does it use the values above in the unit or "
            "currency the task asks for? Write the code that gives exactly what the task asks"))
