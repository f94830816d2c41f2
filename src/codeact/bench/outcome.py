"""What one agent did with one task: the row every agent config returns, smolagents' included."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Outcome", "outcome_of"]


@dataclass(frozen=True)
class Outcome:
    """What one agent did with one task, before checking the answer.

    `answered` is True when the agent produced a final answer, so a number that merely appeared
    in printed output is never scored as an answer. codeact: `final_answer` was called, or the
    model replied in words to the step limit's request for an answer; smolagents: its run
    returned an output (its final answer, or the summary answer it asks for at the step limit);
    no-agent: always. Both frameworks' step-limit answers count alike; `status` ("success" or
    "max_steps") tells them from answers given by `final_answer`.
    """

    output: Any
    answered: bool
    status: str
    steps: int
    prompt_tokens: int
    completion_tokens: int
    error: str | None = None
    step_errors: tuple[str, ...] = ()
    model_timeouts: int = 0
    """Model calls of this run that timed out (and were retried, or ended it)."""
    run_id: str | None = None
    """codeact's run in the run log (`codeact export --solved-in` keeps the solved ones)."""


def outcome_of(result: Any) -> Outcome:
    """The Outcome of a codeact RunResult (every codeact config and variant reports through this)."""
    return Outcome(
        output=result.output,
        answered=result.status == "success" or _answered_at_limit(result),
        status=result.status,
        steps=len(result.steps),
        prompt_tokens=result.usage.prompt_tokens,
        completion_tokens=result.usage.completion_tokens,
        error=result.error,
        step_errors=tuple(s.error for s in result.steps if s.error),
        run_id=result.run_id,
    )


def _answered_at_limit(result: Any) -> bool:
    """The run's last reply was words, not code, in answer to the step limit's request for an answer.

    The loop ends a run "max_steps" on such a reply with the reply as its output: the same kind of
    answer as smolagents' step-limit summary. A step-limit run whose last step ran code (and did not
    call final_answer) holds only printed output, which is not an answer.
    """
    if result.status != "max_steps" or not result.steps or result.output is None:
        return False
    return result.steps[-1].code is None
