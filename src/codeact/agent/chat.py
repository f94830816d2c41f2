"""A conversation with an agent: each `send` is a turn, run against the same history and kernel.

A thin handle over `agent.run(text, reset=False)`: the agent keeps the messages and the kernel
between turns; `reset()` starts over; closing the chat releases the kernel it kept.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from codeact.models.base import Message
from codeact.runs.events import Event
from codeact.runs.result import RunResult

__all__ = ["Chat"]


class Chat:
    """`agent.chat()`: `chat.send(text) -> RunResult`, `chat.reset()`, `chat.history`."""

    def __init__(self, agent: Any) -> None:  # an Agent (not imported: agent.py imports this module)
        self.agent = agent
        agent.reset()

    def send(self, text: str, *, images: Sequence[Any] | None = None) -> RunResult:
        """One turn: the agent works on `text` (and `images`) with everything said and defined so far."""
        result: RunResult = self.agent.run(text, reset=False, images=images)
        return result

    def stream(self, text: str, *, images: Sequence[Any] | None = None) -> Iterator[Event]:
        """`send`, as events (the last is RunFinished)."""
        events: Iterator[Event] = self.agent.run(text, stream=True, reset=False, images=images)
        return events

    def reset(self) -> None:
        """Start over: no history, a fresh kernel at the next turn."""
        self.agent.reset()

    @property
    def history(self) -> tuple[Message, ...]:
        history: tuple[Message, ...] = self.agent.history
        return history

    @property
    def conversation_id(self) -> str | None:
        return self.agent.conversation_id  # type: ignore[no-any-return]

    def close(self) -> None:
        self.agent.reset()

    def __enter__(self) -> Chat:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
