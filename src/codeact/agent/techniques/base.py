"""The contract of a step technique and the one function the loop calls."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from codeact.agent.observation import list_tool_results
from codeact.runs.result import Step
from codeact.sandbox.base import Execution

__all__ = ["ReplyReview", "Review", "StepReview", "returned_in_step", "review_reply", "review_step"]


@dataclass(frozen=True)
class Review:
    """What a technique says about one action.

    Attributes:
        note: text added after the observation, for the model's next step ("" adds nothing).
        reject_answer: a reason to send a final answer of this action back to work; None lets it through.
        temperature: sample the next reply at this temperature (greedy decoding brings the same
            code back after the same prompt); None keeps the model's own.
        observation: shown to the model in place of the step's observation (None shows it, with
            the note). A note after an observation the model has seen before is easily skipped by
            a small model; a short new observation is not.
    """

    note: str = ""
    reject_answer: str | None = None
    temperature: float | None = None
    observation: str | None = None


class StepReview(Protocol):
    """A technique: reads the finished action; returns a Review, or None to say nothing."""

    def review(self, steps: Sequence[Step], code: str | None, execution: Execution) -> Review | None: ...


@runtime_checkable
class ReplyReview(Protocol):
    """A technique that also reads replies holding no action (no code, no tool call): `steps[-1]` is that reply."""

    def review_reply(self, steps: Sequence[Step]) -> Review | None: ...


def review_step(techniques: Sequence[StepReview], steps: Sequence[Step], code: str | None,
                execution: Execution) -> Review:
    """Every technique's say on one action, merged: notes joined; the first rejection, the first
    replacement observation and the highest temperature kept."""
    return _merged(technique.review(steps, code, execution) for technique in techniques)


def review_reply(techniques: Sequence[StepReview], steps: Sequence[Step]) -> Review:
    """The say of the techniques that read replies without an action (`ReplyReview`) on `steps[-1]`, merged."""
    readers = [t for t in techniques if isinstance(t, ReplyReview)]
    return _merged(reader.review_reply(steps) for reader in readers)


def _merged(reviews: Iterable[Review | None]) -> Review:
    notes: list[str] = []
    rejection: str | None = None
    observation: str | None = None
    temperatures: list[float] = []
    for review in reviews:
        if review is None:
            continue
        if review.note:
            notes.append(review.note)
        if rejection is None and review.reject_answer:
            rejection = review.reject_answer
        if observation is None and review.observation:
            observation = review.observation
        if review.temperature is not None:
            temperatures.append(review.temperature)
    return Review("\n".join(notes), rejection, max(temperatures, default=None), observation)


def returned_in_step(execution: Execution) -> str:
    """The tail of a rejected answer: what the tools returned in that step ("" if none was called).

    Read in the 1.5B's runs: told only to look, it echoed the rejection back without code, then
    answered a number it had never seen; shown the values, checking costs it no tool call.
    """
    listing = list_tool_results(execution.tool_calls)
    return ". What your tools returned in that step:\n" + listing if listing else ""
