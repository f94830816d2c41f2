"""A model that replays a fixed list of replies: for tests, examples and replay."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence

from codeact.errors import ModelError
from codeact.models.base import Message, Model, ModelReply, ToolSpec, Usage, check_max_tokens
from codeact.models.stops import cut_at_stop

__all__ = ["Reply", "ScriptedModel"]

Reply = str | ModelReply | Callable[[Sequence[Message]], str | ModelReply]


class ScriptedModel(Model):
    """Return `replies` in order; a callable reply is called with the messages.

    Usage is counted as whitespace-separated words, so budgets can be tested without a tokenizer.
    With `max_tokens`, a text reply longer than that many words is cut there and says so
    (finish_reason "length"), like a server's reply that hits its cap. With `supports_images`,
    `calls` keeps the images messages carry; without, they arrive as notes, as for any text model.
    """

    def __init__(
        self, replies: Sequence[Reply], *, name: str = "scripted", max_tokens: int | None = None,
        supports_images: bool = False,
    ) -> None:
        self.replies = list(replies)
        self.name = name
        self.supports_images = supports_images
        self.max_tokens = None if max_tokens is None else check_max_tokens(max_tokens, 1, owner="ScriptedModel")
        self.calls: list[list[Message]] = []

    def complete(
        self,
        messages: Sequence[Message],
        *,
        stop: Sequence[str] | None = None,
        tools: Sequence[ToolSpec] | None = None,
    ) -> ModelReply:
        if len(self.calls) >= len(self.replies):
            raise ModelError(f"ScriptedModel ran out of replies after {len(self.replies)} calls")
        reply = self.replies[len(self.calls)]
        messages = self.visible(messages)
        self.calls.append(list(messages))
        if callable(reply):
            reply = reply(messages)
        if isinstance(reply, ModelReply):
            return reply
        text = cut_at_stop(reply, stop)
        prompt_words = sum(len(m.content.split()) for m in messages)
        finish = "stop"
        if self.max_tokens is not None and len(text.split()) > self.max_tokens:
            text, finish = " ".join(text.split()[: self.max_tokens]), "length"
        return ModelReply(text, Usage(prompt_words, len(text.split())), finish_reason=finish)

    def stream(self, messages: Sequence[Message], *, stop: Sequence[str] | None = None) -> Iterator[str | ModelReply]:
        """The scripted reply a word at a time (with its spacing), then the reply itself."""
        reply = self.complete(messages, stop=stop)
        yield from re.findall(r"\s*\S+|\s+", reply.text)
        yield reply
