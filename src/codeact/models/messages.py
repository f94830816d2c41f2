"""The values a model call exchanges: messages in; a reply with its usage and tool calls out.

A message's content is its text, then its images (`Message.parts()` in that order): each
backend renders the parts its API's way, and a model that does not accept images gets
`text_only(messages)`, where each image is a note in the text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from codeact.models.images import Image

__all__ = ["NOT_SHOWN", "Message", "ModelReply", "Role", "ToolCall", "ToolSpec", "Usage", "text_only"]

#: Why a text-only model gets a note where an image was.
NOT_SHOWN = "not shown: this model does not accept images"

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True)
class ToolCall:
    """A native tool call requested by the model."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ToolSpec:
    """What a native tool-calling API needs to know about a tool."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    images: tuple[Image, ...] = ()
    """Images that follow the text (a user's task, an observation, a tool's result)."""

    def parts(self) -> list[str | Image]:
        """The content in order: the text (if any), then the images."""
        return ([self.content] if self.content else []) + list(self.images)


def text_only(messages: Sequence[Message]) -> list[Message]:
    """`messages` for a model that does not accept images: each image becomes a note in the text."""
    out: list[Message] = []
    for m in messages:
        if not m.images:
            out.append(m)
            continue
        notes = "\n".join(image.note(NOT_SHOWN) for image in m.images)
        out.append(replace(m, content=f"{m.content}\n{notes}" if m.content else notes, images=()))
    return out


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


@dataclass(frozen=True)
class ModelReply:
    """One reply. `finish_reason` uses the chat-completions words: "stop" (done or cut at a stop
    sequence), "length" (the reply hit `max_tokens`), "tool_calls"; None when the server sent none.
    """

    text: str
    usage: Usage = Usage()
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    raw: Any = field(default=None, repr=False, compare=False)
