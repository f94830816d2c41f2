"""The chat-completions wire form: codeact messages and tools out, replies and stream chunks in.

Shared by the backends that speak it: `OpenAICompatible`, `LiteLLM` (its replies have the same
shape), the bench's llama.cpp server (prompt counting) and `LocalModel`'s template tools. Pure
functions and one small accumulator; no SDK import, no I/O.

An assistant turn that carried tool calls is sent with `content: ""`, not null: llama-cpp-python's
server validates `content` as a string and answers null with a 500.

Images go as content parts: a message's text, then `image_url` parts holding data URLs. The
`tool` role takes text only, so a tool result's images follow it in a user message.

Malformed tool-call arguments never raise: a `ToolCall` whose arguments were not a JSON object
carries the model's raw string as ``{"_raw": "<what the model wrote>"}`` (see `RAW_ARGUMENTS`),
so the agent can show the model its mistake.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from codeact.errors import ModelResponseError
from codeact.models.messages import Message, ModelReply, ToolCall, ToolSpec, Usage, text_only
from codeact.models.stops import StopCutter

__all__ = [
    "MAX_REPLY_CHARS",
    "RAW_ARGUMENTS",
    "ChunkReader",
    "arguments_json",
    "content_parts",
    "json_safe",
    "parse_arguments",
    "reply_from_completion",
    "to_openai_messages",
    "to_openai_tools",
    "usage_from",
]

#: Key under which a tool call keeps arguments that were not a JSON object.
RAW_ARGUMENTS = "_raw"

#: A streamed reply longer than this is cut (finish_reason "length"): a server that ignores
#: `max_tokens` must not grow the host's memory without end.
MAX_REPLY_CHARS = 2_000_000


def to_openai_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Messages in chat-completions form, incl. assistant tool calls and tool results."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "tool":
            out.append({"role": "tool", "tool_call_id": m.tool_call_id or "", "content": m.content})
            if m.images:
                images = Message("user", f"The images `{m.tool_call_id or 'the tool'}` returned:", images=m.images)
                out.append({"role": "user", "content": content_parts(images)})
        elif m.role == "assistant" and m.tool_calls:
            out.append(
                {
                    "role": "assistant",
                    "content": m.content,  # "" rather than null: see the module docstring
                    "tool_calls": [
                        {
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": arguments_json(c.arguments)},
                        }
                        for c in m.tool_calls
                    ],
                }
            )
        elif m.images and m.role == "user":
            out.append({"role": m.role, "content": content_parts(m)})
        else:  # system and assistant turns take text: their (rare) images go as notes
            out.append({"role": m.role, "content": text_only([m])[0].content})
    return out


def content_parts(message: Message) -> list[dict[str, Any]]:
    """A message's text and images as chat-completions content parts."""
    return [
        {"type": "text", "text": part} if isinstance(part, str)
        else {"type": "image_url", "image_url": {"url": part.data_url()}}
        for part in message.parts()
    ]


def to_openai_tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
        }
        for t in tools
    ]


def arguments_json(arguments: Mapping[str, Any]) -> str:
    """Tool-call arguments as the JSON string the wire carries; never raises."""
    raw = arguments.get(RAW_ARGUMENTS)
    if len(arguments) == 1 and isinstance(raw, str):
        return raw  # give the model back exactly what it wrote
    return json.dumps(json_safe(dict(arguments)), ensure_ascii=False)


def json_safe(value: Any, _depth: int = 0) -> Any:
    """`value` with everything JSON cannot carry made plain: sets and tuples become lists, other
    keys and objects their repr. Arguments come from the model (a Python literal may hold a set),
    and one that cannot be serialised must not make every later request of the run fail.
    """
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if _depth > 64:
        return repr(value)[:1000]
    if isinstance(value, Mapping):
        return {k if isinstance(k, str) else repr(k): json_safe(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return [json_safe(v, _depth + 1) for v in sorted(value, key=repr)]
    if isinstance(value, (list, tuple)):
        return [json_safe(v, _depth + 1) for v in value]
    return repr(value)[:1000]


def parse_arguments(raw: str | None) -> dict[str, Any]:
    """Tool-call arguments as a dict; anything but a JSON object is kept as {"_raw": raw}."""
    if raw is None or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {RAW_ARGUMENTS: raw}
    return value if isinstance(value, dict) else {RAW_ARGUMENTS: raw}


def usage_from(usage: Any) -> Usage:
    """Usage from an OpenAI-shaped usage object; missing fields count as 0."""
    if usage is None:
        return Usage()
    return Usage(
        int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0)
    )


def reply_from_completion(completion: Any, *, url: str) -> ModelReply:
    """A ModelReply from a chat.completion object (stop sequences are cut by `Model.complete`)."""
    choices = getattr(completion, "choices", None)
    if not choices:
        shown = repr(completion)[:300]
        raise ModelResponseError(f"the model server at {url} sent a reply without choices: {shown}")
    choice = choices[0]
    message = getattr(choice, "message", None)
    text = getattr(message, "content", None) or ""
    finish = getattr(choice, "finish_reason", None)
    calls: list[ToolCall] = []
    for i, call in enumerate(getattr(message, "tool_calls", None) or ()):
        function = getattr(call, "function", None)
        if function is None:
            continue
        arguments = parse_arguments(getattr(function, "arguments", None))
        calls.append(ToolCall(getattr(call, "id", None) or f"call_{i}", function.name, arguments))
    return ModelReply(
        text, usage_from(getattr(completion, "usage", None)), tuple(calls), finish, raw=completion
    )


class ChunkReader:
    """Collects text, tool calls, usage and the finish reason from chat.completion.chunk objects."""

    def __init__(self, stop: Sequence[str] | None) -> None:
        self.cutter = StopCutter(stop)
        self.parts: list[str] = []
        self.usage = Usage()
        self.finish: str | None = None
        self.size = 0
        self.too_long = False
        self.seen_choices = False
        self.content_chunks = 0
        # index -> [id, name, argument pieces]: a call's arguments arrive in pieces.
        self.calls: dict[int, list[Any]] = {}

    @property
    def done(self) -> bool:
        """Stop reading: a stop sequence showed up, or the reply passed MAX_REPLY_CHARS."""
        return self.cutter.stopped or self.too_long

    def feed(self, chunk: Any) -> str:
        if getattr(chunk, "usage", None) is not None:
            self.usage = usage_from(chunk.usage)
        piece = ""
        for choice in (getattr(chunk, "choices", None) or ())[:1]:
            self.seen_choices = True
            delta = getattr(choice, "delta", None)
            content = getattr(delta, "content", None)
            if content:
                self.content_chunks += 1
                piece = self.cutter.feed(content)
            for call in getattr(delta, "tool_calls", None) or ():
                self._add_call(call)
            if getattr(choice, "finish_reason", None):
                self.finish = choice.finish_reason
        if self.cutter.stopped:
            self.finish = "stop"
        self.size += len(piece)
        if self.size > MAX_REPLY_CHARS:
            self.too_long, self.finish = True, "length"
        self.parts.append(piece)
        return piece

    def _add_call(self, delta: Any) -> None:
        index = getattr(delta, "index", None)
        entry = self.calls.setdefault(index if isinstance(index, int) else len(self.calls), [None, "", []])
        if getattr(delta, "id", None):
            entry[0] = delta.id
        function = getattr(delta, "function", None)
        if function is not None:
            if getattr(function, "name", None):
                entry[1] += function.name
            if getattr(function, "arguments", None):
                entry[2].append(function.arguments)
                self.size += len(function.arguments)

    def end(self) -> str:
        """Release the text held back for a possible stop sequence; the stream is over."""
        tail = self.cutter.flush()
        if self.cutter.stopped:
            self.finish = "stop"
        self.parts.append(tail)
        return tail

    def complete_reply(self, *, url: str, prompt_tokens: Callable[[], int]) -> ModelReply:
        """The reply of a whole stream read by `complete`."""
        if not self.seen_choices:
            raise ModelResponseError(f"the model server at {url} sent a stream without choices")
        self.end()
        return self.with_usage(self.reply(), prompt_tokens)

    def with_usage(self, reply: ModelReply, prompt_tokens: Callable[[], int]) -> ModelReply:
        """`reply`, with usage counted here when the server sent none (see `count_prompt`)."""
        if reply.usage != Usage():
            return reply
        return replace(reply, usage=Usage(prompt_tokens(), self.content_chunks))

    def reply(self) -> ModelReply:
        calls = tuple(
            ToolCall(call_id or f"call_{i}", name, parse_arguments("".join(pieces)))
            for i, (call_id, name, pieces) in sorted(self.calls.items())
            if name
        )
        finish = self.finish or ("tool_calls" if calls else None)
        return ModelReply("".join(self.parts), self.usage, calls, finish)
