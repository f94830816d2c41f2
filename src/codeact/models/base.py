"""The one contract every model backend implements: messages in, a ModelReply out."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from codeact.errors import ConfigError

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "Message",
    "Model",
    "ModelReply",
    "Role",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "check_max_tokens",
]

#: The reply cap every remote backend sends when the caller gives none. Without a cap a server
#: generates until its context is full (llama.cpp: n_ctx tokens), which on a small looping model
#: means minutes for one call.
DEFAULT_MAX_TOKENS = 2048

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

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            data["tool_calls"] = [
                {"id": c.id, "name": c.name, "arguments": c.arguments} for c in self.tool_calls
            ]
        if self.tool_call_id is not None:
            data["tool_call_id"] = self.tool_call_id
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        calls = tuple(ToolCall(c["id"], c["name"], c["arguments"]) for c in data.get("tool_calls", ()))
        return cls(data["role"], data["content"], calls, data.get("tool_call_id"))


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


class Model(ABC):
    """A chat model. Subclasses implement `complete`; streaming and async have defaults.

    `stop` sequences end generation early (the code agent stops after a closing fence);
    backends whose server rejects `stop` must cut the text themselves.
    """

    #: Short identifier shown in logs and reports, e.g. "openai:gpt-4o".
    name: str = "model"

    @abstractmethod
    def complete(
        self,
        messages: Sequence[Message],
        *,
        stop: Sequence[str] | None = None,
        tools: Sequence[ToolSpec] | None = None,
    ) -> ModelReply:
        """Return the model's reply to `messages`."""

    def stream(
        self,
        messages: Sequence[Message],
        *,
        stop: Sequence[str] | None = None,
    ) -> Iterator[str | ModelReply]:
        """Yield text chunks, then the complete ModelReply last."""
        reply = self.complete(messages, stop=stop)
        yield reply.text
        yield reply

    async def acomplete(
        self,
        messages: Sequence[Message],
        *,
        stop: Sequence[str] | None = None,
        tools: Sequence[ToolSpec] | None = None,
    ) -> ModelReply:
        """Async variant; the default runs `complete` in a worker thread."""
        return await asyncio.to_thread(self.complete, messages, stop=stop, tools=tools)

    async def astream(
        self,
        messages: Sequence[Message],
        *,
        stop: Sequence[str] | None = None,
    ) -> AsyncIterator[str | ModelReply]:
        reply = await self.acomplete(messages, stop=stop)
        yield reply.text
        yield reply

    def close(self) -> None:  # noqa: B027 - a no-op default, not abstract
        """Release clients or loaded weights. Safe to call twice."""


def check_max_tokens(value: int | None, default: int, *, owner: str) -> int:
    """A backend's reply cap: `default` for None, else a positive int (ConfigError otherwise)."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{owner}(max_tokens=...) must be a whole number of tokens >= 1, got {value!r}.")
    return value


def cut_at_stop(text: str, stop: Sequence[str] | None) -> str:
    """Truncate at the first stop sequence, for servers that ignore or reject `stop`."""
    if not stop:
        return text
    cut = min((i for s in stop if s and (i := text.find(s)) != -1), default=-1)
    return text if cut == -1 else text[:cut]
