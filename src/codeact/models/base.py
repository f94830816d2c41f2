"""The one contract every model backend implements: one request method in, a ModelReply out.

The values exchanged (Message, ModelReply, ...) live in `messages.py`, re-exported here where
callers have always found them; stop handling lives in `stops.py`.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, TypeVar

from codeact.errors import ConfigError
from codeact.models._retry import (
    BeforeRetry,
    Failure,
    RetryPolicy,
    acall_with_retries,
    call_with_retries,
    to_error,
)
from codeact.models.messages import Message, ModelReply, Role, ToolCall, ToolSpec, Usage, text_only
from codeact.models.stops import StreamCut, cut_reply

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

T = TypeVar("T")


class Model:
    """A chat model.

    A backend implements one request method, `request` (one attempt: messages in, a ModelReply
    out), and optionally `request_stream` (text pieces, then the ModelReply). The base owns the
    rest, so every backend behaves alike:

    - retries: `complete` (and `stream`, until its first piece) retries a failed attempt under
      `retry`, with the failure read by `classify` (the backend's SDK errors as fields); mid-stream
      failures become codeact errors without a retry, since text has been shown.
    - stop sequences: `stop` ends generation early (the code agent stops after a closing fence).
      A backend passes them on to its server when it can; the base cuts the text at the first
      one anyway, because some servers ignore them.
    - the async form: a backend with a real async client also implements `arequest` (and
      `arequest_stream`); otherwise `acomplete` runs `complete` in a worker thread.

    A model that needs none of this (a test double) may override `complete` itself instead.
    """

    #: Short identifier shown in logs and reports, e.g. "openai:gpt-4o".
    name: str = "model"
    #: Retries of a failed attempt; None: one attempt (in-process and scripted models).
    retry: RetryPolicy | None = None
    #: Seconds the server may stay silent; named in the error a timeout ends with.
    timeout: float | None = None
    #: Called before a timed-out attempt is retried (see `codeact.models._retry`).
    before_retry: BeforeRetry | None = None
    #: Where requests go, for error messages: a URL, or the model's name.
    where: str = ""
    #: Whether the model reads images; without, each image reaches it as a note (`text_only`).
    supports_images: bool = False

    def at_temperature(self, temperature: float) -> Model:
        """This model sampling at `temperature`, for one call (a technique's retry after a repeat).

        A shallow copy sharing the client, so it costs nothing; a backend without a
        `temperature` setting (a scripted model) is returned as it is.
        """
        if getattr(self, "temperature", temperature) == temperature:
            return self
        hotter = copy.copy(self)
        hotter.temperature = temperature  # type: ignore[attr-defined]
        return hotter

    # -- what a backend implements -------------------------------------------------------------

    def request(
        self, messages: Sequence[Message], *, stop: Sequence[str] | None, tools: Sequence[ToolSpec] | None
    ) -> ModelReply:
        """One attempt at a reply. `stop` may be sent to the server; the base cuts the text too."""
        raise NotImplementedError(f"{type(self).__name__} implements neither request() nor complete()")

    async def arequest(
        self, messages: Sequence[Message], *, stop: Sequence[str] | None, tools: Sequence[ToolSpec] | None
    ) -> ModelReply:
        """One attempt on a real async client; without one, `acomplete` runs `complete` in a thread."""
        raise NotImplementedError

    def request_stream(self, messages: Sequence[Message], *, stop: Sequence[str] | None) -> Iterator[str | ModelReply]:
        """One attempt, streamed: text pieces, then the ModelReply. Optional."""
        raise NotImplementedError

    def request_astream(
        self, messages: Sequence[Message], *, stop: Sequence[str] | None
    ) -> AsyncIterator[str | ModelReply]:
        """`request_stream` on a real async client. Optional."""
        raise NotImplementedError

    def classify(self, exc: BaseException) -> Failure | None:
        """`exc` as a Failure the retry loop can judge; None lets it pass through unchanged."""
        return None

    def close(self) -> None:
        """Release clients or loaded weights. Safe to call twice."""

    # -- what callers use ----------------------------------------------------------------------

    def complete(
        self,
        messages: Sequence[Message],
        *,
        stop: Sequence[str] | None = None,
        tools: Sequence[ToolSpec] | None = None,
    ) -> ModelReply:
        """Return the model's reply to `messages`."""
        messages = self.visible(messages)
        reply = self._retried(lambda: self.request(messages, stop=stop, tools=tools))
        return cut_reply(reply, stop)

    async def acomplete(
        self,
        messages: Sequence[Message],
        *,
        stop: Sequence[str] | None = None,
        tools: Sequence[ToolSpec] | None = None,
    ) -> ModelReply:
        """Async `complete`: on the backend's async client, or `complete` in a worker thread."""
        messages = self.visible(messages)
        if not self._has("arequest"):
            return await asyncio.to_thread(self.complete, messages, stop=stop, tools=tools)
        if self.retry is None:
            reply = await self.arequest(messages, stop=stop, tools=tools)
        else:
            reply = await acall_with_retries(
                lambda: self.arequest(messages, stop=stop, tools=tools), policy=self.retry,
                classify=self.classify, url=self.where or self.name, timeout=self.timeout,
                before_retry=self.before_retry,
            )
        return cut_reply(reply, stop)

    def stream(self, messages: Sequence[Message], *, stop: Sequence[str] | None = None) -> Iterator[str | ModelReply]:
        """Yield text chunks, then the complete ModelReply last.

        Attempts are retried until the first piece arrives. When a stop sequence shows up in the
        text the stream is closed at once, so the reply's usage then holds only what the server
        sent before that.
        """
        messages = self.visible(messages)
        if not self._has("request_stream"):
            reply = self.complete(messages, stop=stop)
            yield reply.text
            yield reply
            return

        def first() -> tuple[Iterator[str | ModelReply], str | ModelReply | None]:
            pieces = self.request_stream(messages, stop=stop)
            try:
                return pieces, next(pieces, None)
            except BaseException:
                _close(pieces)
                raise

        pieces, head = self._retried(first)
        cutter = StreamCut(stop)
        try:
            item: str | ModelReply | None = head
            while item is not None:
                if isinstance(item, ModelReply):
                    yield from cutter.finish(item)
                    return
                piece = cutter.feed(item)
                if piece:
                    yield piece
                if cutter.stopped:
                    yield from cutter.finish(None)
                    return
                item = self._next_piece(pieces)
            yield from cutter.finish(None)
        finally:
            _close(pieces)

    async def astream(
        self, messages: Sequence[Message], *, stop: Sequence[str] | None = None
    ) -> AsyncIterator[str | ModelReply]:
        """Async `stream`: on the backend's async client, or one `acomplete` reply in one piece."""
        messages = self.visible(messages)
        if not self._has("request_astream"):
            reply = await self.acomplete(messages, stop=stop)
            yield reply.text
            yield reply
            return

        async def first() -> tuple[AsyncIterator[str | ModelReply], str | ModelReply | None]:
            pieces = self.request_astream(messages, stop=stop)
            try:
                return pieces, await anext(pieces, None)
            except BaseException:
                await _aclose(pieces)
                raise

        if self.retry is None:
            pieces, head = await first()
        else:
            pieces, head = await acall_with_retries(
                first, policy=self.retry, classify=self.classify, url=self.where or self.name,
                timeout=self.timeout, before_retry=self.before_retry,
            )
        cutter = StreamCut(stop)
        try:
            item: str | ModelReply | None = head
            while item is not None:
                if isinstance(item, ModelReply):
                    for out in cutter.finish(item):
                        yield out
                    return
                piece = cutter.feed(item)
                if piece:
                    yield piece
                if cutter.stopped:
                    break
                try:
                    item = await pieces.__anext__()
                except StopAsyncIteration:
                    item = None
                except Exception as exc:
                    raise self._final_error(exc) from exc
            for out in cutter.finish(None):
                yield out
        finally:
            await _aclose(pieces)

    def visible(self, messages: Sequence[Message]) -> Sequence[Message]:
        """`messages` as this model can read them: images become notes unless `supports_images`."""
        return messages if self.supports_images else text_only(messages)

    # -- internals -----------------------------------------------------------------------------

    def _has(self, method: str) -> bool:
        """Whether this backend implements the optional `method`."""
        return getattr(type(self), method) is not getattr(Model, method)

    def _retried(self, attempt: Callable[[], T]) -> T:
        if self.retry is None:
            return attempt()
        return call_with_retries(
            attempt, policy=self.retry, classify=self.classify, url=self.where or self.name,
            timeout=self.timeout, before_retry=self.before_retry,
        )

    def _next_piece(self, pieces: Iterator[str | ModelReply]) -> str | ModelReply | None:
        try:
            return next(pieces)
        except StopIteration:
            return None
        except Exception as exc:
            raise self._final_error(exc) from exc

    def _final_error(self, exc: Exception) -> Exception:
        """A mid-stream failure as a codeact error (not retried: text has been shown)."""
        failure = self.classify(exc)
        if failure is None:
            return exc
        return to_error(failure, url=self.where or self.name, timeout=self.timeout)


def check_max_tokens(value: int | None, default: int, *, owner: str) -> int:
    """A backend's reply cap: `default` for None, else a positive int (ConfigError otherwise)."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{owner}(max_tokens=...) must be a whole number of tokens >= 1, got {value!r}.")
    return value


def _close(pieces: Iterator[Any]) -> None:
    close = getattr(pieces, "close", None)
    if close is not None:
        close()


async def _aclose(pieces: AsyncIterator[Any]) -> None:
    aclose = getattr(pieces, "aclose", None)
    if aclose is not None:
        await aclose()
