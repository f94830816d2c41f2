"""One recorded run as a conversation: the messages the model saw, its replies, what to learn.

The messages come from the run's own `model_requested` deltas (the prompt exactly as sent) and
its replies from `model_replied`, so an example is what happened, not a re-rendering. An
assistant turn is trainable unless its step failed (an error, no code action) or the step was
asked of the model more than once (a retry): those keep `train=False` (OpenAI's `weight: 0`) or
are dropped with the observation that answered them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["Conversation", "Turn", "conversation_of"]


@dataclass(frozen=True)
class Turn:
    role: str
    """"system", "user" (the task and each observation) or "assistant"."""
    content: str
    train: bool = True
    """For assistant turns: learn from this one (False: it failed or was retried)."""
    step: int | None = None


@dataclass(frozen=True)
class Conversation:
    run_id: str
    task: str
    status: str
    steps: int
    created: float
    turns: tuple[Turn, ...]
    tools: tuple[dict[str, Any], ...] = ()
    """OpenAI-style function specs of the run's tools."""

    def without_failed(self) -> Conversation:
        """The failed assistant turns removed, each with the observation that answered it."""
        kept: list[Turn] = []
        skip_answer = False
        for turn in self.turns:
            if turn.role == "assistant" and not turn.train:
                skip_answer = True
                continue
            if skip_answer and turn.role == "user":
                skip_answer = False
                continue
            skip_answer = False
            kept.append(turn)
        return replace(self, turns=tuple(kept))


def conversation_of(run_id: str, task: str, status: str, created: float, events: Sequence[Mapping[str, Any]],
                    tools: Sequence[dict[str, Any]] = ()) -> Conversation | None:
    """The run's last request plus its last reply; None when the record cannot give it whole
    (no request, or compaction rewrote earlier turns so the steps are no longer all there)."""
    messages: list[dict[str, Any]] = []
    replies: dict[int, list[str]] = {}
    failed: set[int] = set()
    last_reply: tuple[int, str] | None = None
    for event in events:
        kind = event.get("kind")
        if kind == "model_requested":
            keep = int(event.get("keep", 0))
            messages = messages[:keep] + [dict(m) for m in event.get("messages", [])]
        elif kind == "model_replied":
            step = int(event.get("step", 0))
            replies.setdefault(step, []).append(str(event.get("text", "")))
            last_reply = (step, str(event.get("text", "")))
        elif kind == "action_parsed" and event.get("note") == "no_code":  # a reply with no action
            failed.add(int(event.get("step", 0)))
        elif kind == "observed" and event.get("error"):
            failed.add(int(event.get("step", 0)))
    if not messages or last_reply is None:
        return None
    turns = [Turn(str(m.get("role", "")), str(m.get("content", ""))) for m in messages]
    turns.append(Turn("assistant", last_reply[1]))
    steps = sorted(replies)
    assistants = [i for i, t in enumerate(turns) if t.role == "assistant"]
    if len(assistants) != len(steps):
        return None  # compaction (or a summary turn) stands between the record and the prompt
    for index, step in zip(assistants, steps, strict=True):
        trainable = step not in failed and len(replies[step]) == 1
        turns[index] = replace(turns[index], train=trainable, step=step)
    return Conversation(run_id, task, status, len(steps), created, tuple(turns), tuple(tools))
