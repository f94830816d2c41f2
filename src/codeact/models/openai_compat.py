"""Chat-completions backend on the official `openai` SDK: OpenAI, vLLM, Ollama, llama.cpp server.

Servers differ in what they accept, so the backend adapts once and remembers: a server that
rejects `stop` (400 with `param: "stop"`, or, when it sends no `param`, an error message naming
`stop`) is asked again without it; likewise `stream_options`; a model that wants
`max_completion_tokens` instead of `max_tokens` gets it. Stop sequences are always applied
client-side too, because some servers ignore them.

Every request carries `max_tokens` (default `DEFAULT_MAX_TOKENS`): a server's own default is
often "until the context is full". `complete` reads the reply as a stream, so `timeout` bounds
the silence since the last token rather than the whole reply (a slow server that keeps producing
is not cut off), and a server that notices the hang-up (llama-cpp-python, vLLM) stops generating
an abandoned reply instead of finishing it while the retry waits behind it.

The wire form itself (messages, tools, replies, stream chunks) is `codeact.models.openai_wire`.

The SDK is imported in the constructor, not at module import, to keep `import codeact` fast.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from codeact.errors import ConfigError
from codeact.models._retry import BeforeRetry, Failure, Resend, RetryPolicy, sdk_classifier, server_message
from codeact.models.base import DEFAULT_MAX_TOKENS, Message, Model, ModelReply, ToolSpec, check_max_tokens
from codeact.models.messages import text_only
from codeact.models.openai_wire import ChunkReader, reply_from_completion, to_openai_messages, to_openai_tools

if TYPE_CHECKING:
    import openai

__all__ = ["MAX_SERVER_STOPS", "OPENAI_URL", "PLACEHOLDER_KEY", "CountPrompt", "OpenAICompatible", "rejected_param"]

#: Counts the prompt tokens of a request: (messages, tools) in chat-completions form.
CountPrompt = Callable[[list[dict[str, Any]], "list[dict[str, Any]] | None"], int]

OPENAI_URL = "https://api.openai.com/v1"
#: Key sent when a custom server needs none: the SDK refuses an empty key.
PLACEHOLDER_KEY = "not-needed"
#: OpenAI accepts at most four stop sequences; the rest are cut client-side.
MAX_SERVER_STOPS = 4


class OpenAICompatible(Model):
    """A model behind a chat-completions endpoint.

    Args:
        model: the model name the server expects, e.g. "gpt-4o" or "qwen2.5-coder".
        base_url: the API root, e.g. "http://127.0.0.1:8080/v1"; default OpenAI (or
            `OPENAI_BASE_URL`).
        api_key: default `OPENAI_API_KEY`; custom servers without one get a placeholder.
        temperature: sampling temperature; None leaves the server's default.
        max_tokens: cap on generated tokens per call; None means `DEFAULT_MAX_TOKENS` (2048).
            A reply that hits it has finish_reason "length".
        extra_params: more request-body fields, sent verbatim (e.g. vLLM's `top_k`).
        timeout: seconds the server may stay silent: until the first token, and between two
            tokens of a streamed reply (the whole reply when `stream_replies` is False).
        max_retries: retries on 408/429/5xx, timeouts and connection errors; never for a request
            the server rejects as invalid.
        retry_delay: backoff ceiling of the first retry in seconds; doubles per retry.
        name: shown in logs; default "openai:MODEL" or "openai-compat:URL#MODEL".
        stream_replies: `complete` reads the reply as a stream (see the module docstring);
            False asks for the whole reply at once.
        before_retry: called with the failure before a timed-out call is retried, e.g. to wait
            until a server you run has stopped generating the abandoned reply.
        count_prompt: counts a request's prompt tokens, `(messages, tools)` in wire form, for a
            streamed reply that carries no usage (llama-cpp-python's server sends none in
            streams); without it the prompt's characters / 4 are counted. Completion tokens are
            then the content chunks, one token each on llama.cpp, vLLM and Ollama.
        supports_images: whether the model reads images (sent as `image_url` parts with data
            URLs). None guesses from the model's name: OpenAI's vision models and names that say
            so ("vision", "-vl", "llava"...); any other model gets each image as a text note.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = DEFAULT_MAX_TOKENS,
        extra_params: Mapping[str, Any] | None = None,
        timeout: float = 120.0,
        max_retries: int = 4,
        retry_delay: float = 0.5,
        name: str | None = None,
        stream_replies: bool = True,
        before_retry: BeforeRetry | None = None,
        count_prompt: CountPrompt | None = None,
        supports_images: bool | None = None,
    ) -> None:
        import openai

        if not model:
            raise ConfigError("OpenAICompatible needs a model name, e.g. OpenAICompatible('gpt-4o').")
        url = (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL).rstrip("/")
        if urlsplit(url).scheme not in ("http", "https"):
            raise ConfigError(f"base_url must start with http:// or https://, got {url!r}.")
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            if _is_openai(url):
                raise ConfigError(
                    "The OpenAI backend needs an API key: set the `OPENAI_API_KEY` environment "
                    "variable or pass `OpenAICompatible(..., api_key=...)`."
                )
            key = PLACEHOLDER_KEY
        self.model = model
        self.base_url = url
        self.temperature = temperature
        self.max_tokens = check_max_tokens(max_tokens, DEFAULT_MAX_TOKENS, owner="OpenAICompatible")
        self.extra_params = dict(extra_params or {})
        self.timeout = timeout
        self.retry = RetryPolicy(max_retries=max_retries, base_delay=retry_delay)
        self.stream_replies = stream_replies
        self.before_retry = before_retry
        self.count_prompt = count_prompt
        self.name = name or (f"openai:{model}" if _is_openai(url) else f"openai-compat:{url}#{model}")
        self.where = url
        self.supports_images = _reads_images(model) if supports_images is None else supports_images
        self._sdk = openai
        self._api_key = key
        self._classify = sdk_classifier(openai)
        self._client: openai.OpenAI | None = None
        self._aclient: tuple[asyncio.AbstractEventLoop, openai.AsyncOpenAI] | None = None
        # What this server turned out not to accept (learned once, kept for later calls).
        self._dropped: set[str] = set()
        self._max_tokens_key = "max_tokens"

    # -- one attempt (retries, stop cutting and the async fallback come from Model) -------------

    def request(
        self, messages: Sequence[Message], *, stop: Sequence[str] | None, tools: Sequence[ToolSpec] | None
    ) -> ModelReply:
        create = self._sync_client().chat.completions.create
        if not self.stream_replies:
            return reply_from_completion(self._send(create, messages, stop, tools), url=self.base_url)
        # Reading the stream is part of the attempt: a stall in the middle is retried too.
        chunks = self._send(create, messages, stop, tools, stream=True)
        reader = ChunkReader(stop)
        try:
            if _is_json(chunks):  # the server ignored `stream` and sent the whole reply
                return reply_from_completion(_completion(json.loads(chunks.response.read())), url=self.base_url)
            for chunk in chunks:
                reader.feed(chunk)
                if reader.done:
                    break
        finally:
            chunks.close()
        return reader.complete_reply(url=self.base_url, prompt_tokens=lambda: self._prompt_tokens(messages, tools))

    async def arequest(
        self, messages: Sequence[Message], *, stop: Sequence[str] | None, tools: Sequence[ToolSpec] | None
    ) -> ModelReply:
        create = self._async_client().chat.completions.create
        if not self.stream_replies:
            completion = await self._asend(create, messages, stop, tools)
            return reply_from_completion(completion, url=self.base_url)
        chunks = await self._asend(create, messages, stop, tools, stream=True)
        reader = ChunkReader(stop)
        try:
            if _is_json(chunks):
                body = json.loads(await chunks.response.aread())
                return reply_from_completion(_completion(body), url=self.base_url)
            async for chunk in chunks:
                reader.feed(chunk)
                if reader.done:
                    break
        finally:
            await chunks.close()
        return reader.complete_reply(url=self.base_url, prompt_tokens=lambda: self._prompt_tokens(messages, tools))

    def request_stream(self, messages: Sequence[Message], *, stop: Sequence[str] | None) -> Iterator[str | ModelReply]:
        """Text pieces, then the ModelReply. A stop sequence in the text (the server ignored
        `stop`) closes the stream at once."""
        chunks = self._send(self._sync_client().chat.completions.create, messages, stop, None, stream=True)
        reader = ChunkReader(stop)
        try:
            for chunk in chunks:
                piece = reader.feed(chunk)
                if piece:
                    yield piece
                if reader.done:
                    break
        finally:
            chunks.close()
        tail = reader.end()
        if tail:
            yield tail
        yield reader.with_usage(reader.reply(), lambda: self._prompt_tokens(messages, None))

    async def request_astream(
        self, messages: Sequence[Message], *, stop: Sequence[str] | None
    ) -> AsyncIterator[str | ModelReply]:
        chunks = await self._asend(self._async_client().chat.completions.create, messages, stop, None, stream=True)
        reader = ChunkReader(stop)
        try:
            async for chunk in chunks:
                piece = reader.feed(chunk)
                if piece:
                    yield piece
                if reader.done:
                    break
        finally:
            await chunks.close()
        tail = reader.end()
        if tail:
            yield tail
        yield reader.with_usage(reader.reply(), lambda: self._prompt_tokens(messages, None))

    def classify(self, exc: BaseException) -> Failure | None:
        return self._classify(exc)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        # An AsyncOpenAI client belongs to its event loop; dropping it is all we can do here.
        self._aclient = None

    # -- internals ----------------------------------------------------------------------------

    def _prompt_tokens(self, messages: Sequence[Message], tools: Sequence[ToolSpec] | None) -> int:
        wire = to_openai_messages(text_only(messages))  # an image's base64 is no measure of its tokens
        wire_tools = to_openai_tools(tools) if tools else None
        if self.count_prompt is not None:
            return int(self.count_prompt(wire, wire_tools))
        return len(json.dumps([wire, wire_tools], ensure_ascii=False)) // 4

    # The SDK's own retries are off (max_retries=0): ours convert errors and cap Retry-After.

    def _sync_client(self) -> openai.OpenAI:
        if self._client is None:
            self._client = self._sdk.OpenAI(
                api_key=self._api_key, base_url=self.base_url, timeout=self.timeout, max_retries=0
            )
        return self._client

    def _async_client(self) -> openai.AsyncOpenAI:
        loop = asyncio.get_running_loop()
        if self._aclient is None or self._aclient[0] is not loop:
            client = self._sdk.AsyncOpenAI(
                api_key=self._api_key, base_url=self.base_url, timeout=self.timeout, max_retries=0
            )
            self._aclient = (loop, client)
        return self._aclient[1]

    def _params(
        self,
        messages: Sequence[Message],
        stop: Sequence[str] | None,
        tools: Sequence[ToolSpec] | None,
        stream: bool,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"model": self.model, "messages": to_openai_messages(messages)}
        if self.temperature is not None:
            params["temperature"] = self.temperature
        params[self._max_tokens_key] = self.max_tokens
        server_stops = [s for s in stop or () if s][:MAX_SERVER_STOPS]
        if server_stops and "stop" not in self._dropped:
            params["stop"] = server_stops
        if tools:
            params["tools"] = to_openai_tools(tools)
        if stream:
            params["stream"] = True
            if "stream_options" not in self._dropped:
                params["stream_options"] = {"include_usage": True}
        if self.extra_params:
            # extra_body, not kwargs: the SDK rejects keyword arguments it does not know.
            params["extra_body"] = dict(self.extra_params)
        return params

    def _send(
        self,
        create: Callable[..., Any],
        messages: Sequence[Message],
        stop: Sequence[str] | None,
        tools: Sequence[ToolSpec] | None,
        *,
        stream: bool = False,
    ) -> Any:
        params = self._params(messages, stop, tools, stream)
        try:
            return create(**params)
        except Exception as exc:
            self._learn(exc, params)
            raise

    async def _asend(
        self,
        create: Callable[..., Any],
        messages: Sequence[Message],
        stop: Sequence[str] | None,
        tools: Sequence[ToolSpec] | None,
        *,
        stream: bool = False,
    ) -> Any:
        params = self._params(messages, stop, tools, stream)
        try:
            return await create(**params)
        except Exception as exc:
            self._learn(exc, params)
            raise

    def _learn(self, exc: Exception, params: Mapping[str, Any]) -> None:
        """Resend at once (`Resend`) without a parameter the server rejected; else nothing."""
        if isinstance(exc, self._sdk.APIStatusError) and self._adapt(exc, params):
            raise Resend from exc

    def _adapt(self, exc: Any, params: Mapping[str, Any]) -> bool:
        """Learn from a rejected request; True when re-sending it differently may work."""
        rejected = rejected_param(exc, params)
        if rejected == "max_tokens" and self._max_tokens_key == "max_tokens":
            self._max_tokens_key = "max_completion_tokens"
            return True
        if rejected in ("stop", "stream_options") and rejected not in self._dropped:
            self._dropped.add(rejected)
            return True
        return False


_ADAPTABLE = ("stop", "stream_options", "max_tokens")


def rejected_param(exc: Any, params: Mapping[str, Any]) -> str | None:
    """Which sent parameter a 400/422 error rejects: its `param` field, else its message.

    The message is read only when the server sends no `param` (vLLM, llama.cpp, Ollama), and
    only for `stop` and `stream_options`, whose names are unlikely in unrelated errors.
    """
    if getattr(exc, "status_code", None) not in (400, 422):
        return None
    param = getattr(exc, "param", None)
    if param:
        return param if param in _ADAPTABLE and param in params else None
    message = server_message(getattr(exc, "body", None), getattr(exc, "message", ""))
    for name in ("stream_options", "stop"):
        if name in params and re.search(rf"\b{name}\b", message):
            return name
    return None


def _is_json(chunks: Any) -> bool:
    response = getattr(chunks, "response", None)
    ctype = getattr(response, "headers", {}).get("content-type", "") if response is not None else ""
    return str(ctype).split(";")[0].strip().lower() == "application/json"


def _completion(body: Any) -> Any:
    """A JSON chat.completion body as attribute-style objects, like the SDK's own."""
    import openai.types.chat

    try:
        return openai.types.chat.ChatCompletion.model_validate(body)
    except ValueError:
        return body


#: Model names that read images: OpenAI's, and the usual markers of open vision models.
_VISION_NAMES = re.compile(
    r"gpt-4o|gpt-4\.1|gpt-4-turbo|gpt-5|chatgpt-4o|\bo[134](?!-mini)|o4-mini|vision|llava|[-_.]vl\b|"
    r"[-_.]vl[-_.]|pixtral|gemma-?3|minicpm-v|moondream|claude|gemini",
    re.IGNORECASE,
)


def _reads_images(model: str) -> bool:
    return _VISION_NAMES.search(model) is not None


def _is_openai(url: str) -> bool:
    return urlsplit(url).hostname == "api.openai.com"
