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
    "StopCutter",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "check_max_tokens",
    "cut_at_stop",
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


class StopCutter:
    """Cuts a stream of text at the first stop sequence, even one split across chunks.

    Text that could be the start of a stop sequence is held back until the next chunk shows
    whether it is.
    """

    def __init__(self, stop: Sequence[str] | None) -> None:
        self.stop = [s for s in stop or () if s]
        self.stopped = False
        self._held = ""

    def feed(self, text: str) -> str:
        """The part of `text` that is safe to emit now."""
        if self.stopped or not text:
            return ""
        buffer = self._held + text
        cut = len(cut_at_stop(buffer, self.stop))
        # A longer stop sequence that starts earlier may still be completed by the next chunk.
        pending = len(buffer) - self._partial_suffix(buffer)
        if cut < len(buffer) and pending >= cut:
            self.stopped, self._held = True, ""
            return buffer[:cut]
        self._held = buffer[pending:]
        return buffer[:pending]

    def flush(self) -> str:
        """Whatever was held back, once the stream has ended (cut at a stop sequence it holds)."""
        held, self._held = self._held, ""
        cut = cut_at_stop(held, self.stop)
        self.stopped = self.stopped or cut != held
        return cut

    def _partial_suffix(self, buffer: str) -> int:
        longest = max((len(s) - 1 for s in self.stop), default=0)
        for k in range(min(longest, len(buffer)), 0, -1):
            if any(s.startswith(buffer[-k:]) for s in self.stop):
                return k
        return 0
