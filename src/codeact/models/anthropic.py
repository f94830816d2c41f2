"""Claude through the official `anthropic` SDK (the Messages API), an optional extra.

The Messages API differs from chat completions in ways this module absorbs: the system prompt
is a separate `system=` field, roles must alternate (consecutive same-role messages are
merged), tool calls are `tool_use` content blocks and their results `tool_result` blocks in a
user turn, and `max_tokens` is required. Images are `image` blocks with a base64 source, after
the text; a tool result carries its images inside its `tool_result` block.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from typing import Any

from codeact._optional import require
from codeact.errors import ConfigError, ModelResponseError
from codeact.models._retry import Failure, RetryPolicy, sdk_classifier
from codeact.models.base import (
    DEFAULT_MAX_TOKENS,
    Message,
    Model,
    ModelReply,
    ToolCall,
    ToolSpec,
    Usage,
    check_max_tokens,
)
from codeact.models.messages import text_only
from codeact.models.openai_wire import RAW_ARGUMENTS, json_safe

__all__ = ["ANTHROPIC_URL", "Anthropic", "from_anthropic_message", "to_anthropic_request"]

ANTHROPIC_URL = "https://api.anthropic.com"

#: Anthropic's stop reasons in the chat-completions vocabulary the rest of codeact uses.
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}


class Anthropic(Model):
    """A Claude model.

    Args:
        model: e.g. "claude-sonnet-4-5".
        api_key: default `ANTHROPIC_API_KEY`.
        base_url: API root without `/v1`; default Anthropic's (or `ANTHROPIC_BASE_URL`).
        max_tokens: cap on generated tokens per call (the API requires one); None means
            `DEFAULT_MAX_TOKENS` (2048). A reply that hits it has finish_reason "length".
        temperature: sampling temperature; None leaves the API's default.
        extra_params: more request-body fields, sent verbatim.
        timeout: seconds to wait for one HTTP response.
        max_retries: retries on 408/429/5xx (incl. 529 overloaded), timeouts, connection errors.
        retry_delay: backoff ceiling of the first retry in seconds; doubles per retry.
        name: shown in logs; default "anthropic:MODEL".
        supports_images: whether the model reads images (every current Claude model does).
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        max_tokens: int | None = DEFAULT_MAX_TOKENS,
        temperature: float | None = None,
        extra_params: Mapping[str, Any] | None = None,
        timeout: float = 120.0,
        max_retries: int = 4,
        retry_delay: float = 0.5,
        name: str | None = None,
        supports_images: bool = True,
    ) -> None:
        sdk = require("anthropic", extra="anthropic", feature="The Anthropic backend")
        if not model:
            raise ConfigError("Anthropic needs a model name, e.g. Anthropic('claude-sonnet-4-5').")
        key = api_key or os.environ.get("ANTHROPIC_API_KEY")
        if not key:
            raise ConfigError(
                "The Anthropic backend needs an API key: set the `ANTHROPIC_API_KEY` environment "
                "variable or pass `Anthropic(..., api_key=...)`."
            )
        self.model = model
        self.base_url = (base_url or os.environ.get("ANTHROPIC_BASE_URL") or ANTHROPIC_URL).rstrip("/")
        self.max_tokens = check_max_tokens(max_tokens, DEFAULT_MAX_TOKENS, owner="Anthropic")
        self.temperature = temperature
        self.extra_params = dict(extra_params or {})
        self.timeout = timeout
        self.retry = RetryPolicy(max_retries=max_retries, base_delay=retry_delay)
        self.name = name or f"anthropic:{model}"
        self.supports_images = supports_images
        self.where = self.base_url
        self._sdk = sdk
        self._api_key = key
        self._classify = sdk_classifier(sdk)
        self._client: Any = None
        self._aclient: tuple[asyncio.AbstractEventLoop, Any] | None = None

    # -- one attempt (retries, stop cutting and the async form's retries come from Model) --------

    def request(
        self, messages: Sequence[Message], *, stop: Sequence[str] | None, tools: Sequence[ToolSpec] | None
    ) -> ModelReply:
        if self._client is None:
            # The SDK's own retries are off: ours convert errors and cap Retry-After.
            self._client = self._sdk.Anthropic(
                api_key=self._api_key, base_url=self.base_url, timeout=self.timeout, max_retries=0
            )
        reply = self._client.messages.create(**self._params(messages, stop, tools))
        return from_anthropic_message(reply, url=self.base_url)

    async def arequest(
        self, messages: Sequence[Message], *, stop: Sequence[str] | None, tools: Sequence[ToolSpec] | None
    ) -> ModelReply:
        loop = asyncio.get_running_loop()
        if self._aclient is None or self._aclient[0] is not loop:
            client = self._sdk.AsyncAnthropic(
                api_key=self._api_key, base_url=self.base_url, timeout=self.timeout, max_retries=0
            )
            self._aclient = (loop, client)
        reply = await self._aclient[1].messages.create(**self._params(messages, stop, tools))
        return from_anthropic_message(reply, url=self.base_url)

    def classify(self, exc: BaseException) -> Failure | None:
        return self._classify(exc)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        self._aclient = None

    def _params(
        self, messages: Sequence[Message], stop: Sequence[str] | None, tools: Sequence[ToolSpec] | None
    ) -> dict[str, Any]:
        params = to_anthropic_request(messages, tools)
        params["model"] = self.model
        params["max_tokens"] = self.max_tokens
        if self.temperature is not None:
            params["temperature"] = self.temperature
        # The API rejects whitespace-only stop sequences; those are cut client-side only.
        server_stops = [s for s in stop or () if s.strip()]
        if server_stops:
            params["stop_sequences"] = server_stops
        if self.extra_params:
            params["extra_body"] = dict(self.extra_params)
        return params


def to_anthropic_request(
    messages: Sequence[Message], tools: Sequence[ToolSpec] | None = None
) -> dict[str, Any]:
    """`system`, `messages` (and `tools`) for the Messages API from codeact messages."""
    system = "\n\n".join(m.content for m in messages if m.role == "system" and m.content)
    turns: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            continue
        role = "assistant" if m.role == "assistant" else "user"
        blocks = _blocks(m)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    request: dict[str, Any] = {"messages": turns}
    if system:
        request["system"] = system
    if tools:
        request["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in tools
        ]
    return request


def _blocks(m: Message) -> list[dict[str, Any]]:
    if m.role == "tool":
        if not m.images:
            return [{"type": "tool_result", "tool_use_id": m.tool_call_id or "", "content": m.content}]
        return [{"type": "tool_result", "tool_use_id": m.tool_call_id or "", "content": _content(m)}]
    if m.role == "assistant" and m.images:  # the API takes images from the user side only
        m = text_only([m])[0]
    # The API rejects empty text blocks.
    blocks: list[dict[str, Any]] = _content(m)
    blocks += [
        {"type": "tool_use", "id": c.id, "name": c.name, "input": json_safe(dict(c.arguments))} for c in m.tool_calls
    ]
    return blocks


def _content(m: Message) -> list[dict[str, Any]]:
    """Text and image blocks, in order (no empty text block: the API rejects those)."""
    return [
        {"type": "text", "text": part} if isinstance(part, str)
        else {"type": "image", "source": {"type": "base64", "media_type": part.mime, "data": part.base64()}}
        for part in m.parts()
    ]


def from_anthropic_message(message: Any, *, url: str) -> ModelReply:
    """A ModelReply from a Messages API response (stop sequences are cut by `Model.complete`).

    Prompt tokens include cache reads and writes, which the API counts apart from `input_tokens`.
    """
    content = getattr(message, "content", None)
    if content is None:
        shown = repr(message)[:300]
        raise ModelResponseError(f"the model server at {url} sent a reply without content: {shown}")
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in content:
        kind = getattr(block, "type", None)
        if kind == "text":
            texts.append(block.text)
        elif kind == "tool_use":
            arguments = block.input if isinstance(block.input, dict) else {RAW_ARGUMENTS: str(block.input)}
            calls.append(ToolCall(block.id, block.name, arguments))
    text = "".join(texts)
    reason = getattr(message, "stop_reason", None)
    finish = _FINISH.get(reason or "", reason)
    usage = getattr(message, "usage", None)
    prompt = sum(
        int(getattr(usage, field, 0) or 0)
        for field in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
    completion = int(getattr(usage, "output_tokens", 0) or 0)
    return ModelReply(text, Usage(prompt, completion), tuple(calls), finish, raw=message)
