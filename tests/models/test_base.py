"""The base Model owns retries, stop cutting and the async form: a backend writes one attempt."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence

import pytest

from codeact.errors import ModelConnectionError
from codeact.models._retry import Failure, Resend, RetryPolicy
from codeact.models.base import Message, Model, ModelReply, ToolSpec, Usage

HI = [Message("user", "hi")]


class Unreachable(Exception):
    """What a backend's SDK raises when the server cannot be reached."""


class Backend(Model):
    """Implements only `request`, failing `failures` times first; records where it ran."""

    name = "backend"
    where = "http://backend.test"

    def __init__(self, text: str, failures: int = 0, max_retries: int = 3) -> None:
        self.text = text
        self.failures = failures
        self.retry = RetryPolicy(max_retries=max_retries, base_delay=0.001)
        self.attempts = 0
        self.threads: list[int] = []

    def request(
        self, messages: Sequence[Message], *, stop: Sequence[str] | None, tools: Sequence[ToolSpec] | None
    ) -> ModelReply:
        self.attempts += 1
        self.threads.append(threading.get_ident())
        if self.attempts <= self.failures:
            raise Unreachable("connection refused")
        return ModelReply(self.text, Usage(3, 4), finish_reason="length")

    def classify(self, exc: BaseException) -> Failure | None:
        return Failure("connection", message=str(exc)) if isinstance(exc, Unreachable) else None


def test_a_backend_with_one_request_method_gets_retries_and_stop_cutting() -> None:
    model = Backend("done STOP and more", failures=2)
    reply = model.complete(HI, stop=["STOP"])
    assert (reply.text, reply.finish_reason, reply.usage) == ("done ", "stop", Usage(3, 4))
    assert model.attempts == 3


def test_retries_run_out_into_a_codeact_error_naming_where() -> None:
    model = Backend("x", failures=5, max_retries=1)
    with pytest.raises(ModelConnectionError, match=r"http://backend\.test.*2 attempts"):
        model.complete(HI)


def test_without_an_async_client_acomplete_runs_the_sync_attempts_in_a_thread() -> None:
    model = Backend("async ok", failures=1)

    async def main() -> tuple[ModelReply, int]:
        return await model.acomplete(HI), threading.get_ident()

    reply, loop_thread = asyncio.run(main())
    assert reply.text == "async ok" and model.attempts == 2
    assert loop_thread not in model.threads


def test_stream_of_a_backend_without_a_streaming_method_is_the_whole_reply() -> None:
    items = list(Backend("one piece STOP").stream(HI, stop=["STOP"]))
    assert items[0] == "one piece "
    assert isinstance(items[-1], ModelReply) and items[-1].finish_reason == "stop"


def test_resend_is_immediate_and_not_counted_as_a_retry() -> None:
    class Adapting(Backend):
        def request(self, messages, *, stop, tools):  # type: ignore[no-untyped-def]
            self.attempts += 1
            if self.attempts == 1:
                raise Resend
            return ModelReply("adapted")

    model = Adapting("", max_retries=0)
    assert model.complete(HI).text == "adapted"


class Streaming(Backend):
    """Implements `request_stream` too; a server that ignores `stop` (the base must cut)."""

    def __init__(self, pieces: Sequence[str], *, fail_first: int = 0, fail_after: int | None = None) -> None:
        super().__init__("".join(pieces))
        self.pieces = list(pieces)
        self.fail_first = fail_first
        self.fail_after = fail_after
        self.closed = 0
        self.opened = 0

    def request_stream(self, messages: Sequence[Message], *, stop: Sequence[str] | None) -> Iterator[str | ModelReply]:
        self.opened += 1
        try:
            if self.opened <= self.fail_first:
                raise Unreachable("refused before the first token")
            for i, piece in enumerate(self.pieces):
                if i == self.fail_after:
                    raise Unreachable("reset mid-stream")
                yield piece
            yield ModelReply("".join(self.pieces), Usage(5, len(self.pieces)), finish_reason="length")
        finally:
            self.closed += 1


def test_stream_cuts_at_a_stop_split_across_pieces_and_closes_the_backend_stream() -> None:
    model = Streaming(["ab", "cS", "TOPx", "never read"])
    items = list(model.stream(HI, stop=["STOP"]))
    text = "".join(i for i in items if isinstance(i, str))
    reply = items[-1]
    assert text == "abc"
    assert isinstance(reply, ModelReply) and (reply.text, reply.finish_reason) == ("abc", "stop")
    assert model.closed == 1


def test_stream_keeps_the_backends_reply_when_no_stop_shows_up() -> None:
    items = list(Streaming(["a", "b"]).stream(HI, stop=["STOP"]))
    assert items[:-1] == ["a", "b"]
    assert items[-1] == ModelReply("ab", Usage(5, 2), finish_reason="length")


def test_stream_retries_until_the_first_piece_but_not_after() -> None:
    model = Streaming(["a", "b"], fail_first=2)
    assert [i for i in model.stream(HI) if isinstance(i, str)] == ["a", "b"]
    assert model.opened == 3 and model.closed == 3

    broken = Streaming(["a", "b", "c"], fail_after=2)
    seen: list[str | ModelReply] = []
    with pytest.raises(ModelConnectionError, match="reset mid-stream"):
        for item in broken.stream(HI):
            seen.append(item)
    assert seen == ["a", "b"] and broken.opened == 1


def test_astream_without_an_async_client_is_one_reply_from_acomplete() -> None:
    async def main() -> list[str | ModelReply]:
        return [item async for item in Backend("x STOP y").astream(HI, stop=["STOP"])]

    items = asyncio.run(main())
    assert items[0] == "x " and isinstance(items[1], ModelReply) and items[1].text == "x "


def test_a_model_that_overrides_complete_itself_still_streams_and_awaits() -> None:
    class Double(Model):
        def complete(self, messages, *, stop=None, tools=None):  # type: ignore[no-untyped-def]
            return ModelReply("as written STOP kept")

    model = Double()
    assert list(model.stream(HI, stop=["STOP"]))[0] == "as written STOP kept"
    assert asyncio.run(model.acomplete(HI)).text == "as written STOP kept"


def test_a_model_with_no_request_method_says_so() -> None:
    with pytest.raises(NotImplementedError, match="neither request"):
        Model().complete(HI)
