"""One live model call, as the drivers make it: streamed into ModelDelta events, bounded in time.

Why a module of its own: both drivers need the same two things around `Model.complete` and
`Model.stream` (pass the reply's chunks on as they come; give up at the run's deadline), and the
sync one needs a worker thread to give up on a call it cannot interrupt.

A deadline is kept like this. Streaming backends are read chunk by chunk and closed as soon as
the deadline passes. A plain `complete` runs in a daemon thread that the driver stops waiting for
at the deadline; the call itself then finishes (or hits the backend's own `timeout=`) in the
background and its reply is dropped, since `Model.complete` takes no per-call timeout. The async
driver cancels the awaited call instead (backends with a native async client stop at once).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from codeact.agent.loop import CallModel
from codeact.errors import BudgetExceeded, ModelError
from codeact.models.base import Model, ModelReply
from codeact.runs.events import ModelDelta

__all__ = ["acall_model", "call_model"]

_DONE = object()


def call_model(model: Model, call: CallModel, *, stream: bool) -> Iterator[ModelDelta | ModelReply]:
    """Yield a ModelDelta per chunk (when `stream`), then the ModelReply.

    Raises BudgetExceeded when `call.deadline` passes first, ModelError when the backend fails.
    """
    model = _sampling(model, call)
    streaming = stream and not call.tools  # `Model.stream` carries no tools
    if call.deadline is None:
        if not streaming:
            yield _complete(model, call)
            return
        yield from _deltas(call.step, _stream(model, call))
        return
    yield from _deltas(call.step, _in_thread(model, call, streaming))


async def acall_model(model: Model, call: CallModel, *, stream: bool) -> AsyncIterator[ModelDelta | ModelReply]:
    """`call_model` for the async driver: awaits the backend's `acomplete`/`astream`."""
    model = _sampling(model, call)
    streaming = stream and not call.tools
    if not streaming:
        reply = await _bounded(model.acomplete(list(call.messages), stop=call.stop or None,
                                               tools=call.tools or None), call.deadline)
        yield _checked(reply)
        return
    chunks = model.astream(list(call.messages), stop=call.stop or None)
    count = 0
    try:
        while True:
            try:
                piece = await _bounded(chunks.__anext__(), call.deadline)
            except StopAsyncIteration:
                break
            if isinstance(piece, ModelReply):
                yield piece
                return
            if piece:
                count += 1
                yield ModelDelta(call.step, str(piece), count)
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]
    raise ModelError(f"{model.name}: the stream ended without a reply")


def _sampling(model: Model, call: CallModel) -> Model:
    return model if call.temperature is None else model.at_temperature(call.temperature)


async def _bounded(awaitable: Any, deadline: float | None) -> Any:
    if deadline is None:
        return await awaitable
    try:
        return await asyncio.wait_for(awaitable, max(deadline - time.monotonic(), 0.0))
    except TimeoutError:
        raise BudgetExceeded("seconds", 0.0, 0.0) from None


def _complete(model: Model, call: CallModel) -> ModelReply:
    return _checked(model.complete(list(call.messages), stop=call.stop or None, tools=call.tools or None))


def _checked(reply: Any) -> ModelReply:
    if not isinstance(reply, ModelReply):
        raise ModelError(f"the model returned a {type(reply).__name__}, not a ModelReply")
    return reply


def _stream(model: Model, call: CallModel) -> Iterator[str | ModelReply]:
    chunks = model.stream(list(call.messages), stop=call.stop or None)
    try:
        yield from chunks
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def _deltas(step: int, pieces: Iterator[str | ModelReply]) -> Iterator[ModelDelta | ModelReply]:
    count = 0
    for piece in pieces:
        if isinstance(piece, ModelReply):
            yield piece
            return
        if piece:
            count += 1
            yield ModelDelta(step, str(piece), count)
    raise ModelError("the model's stream ended without a reply")


def _in_thread(model: Model, call: CallModel, streaming: bool) -> Iterator[str | ModelReply]:
    """The call in a daemon thread; its chunks and reply come through a queue until the deadline."""
    assert call.deadline is not None
    deadline = call.deadline
    out: queue.Queue[Any] = queue.Queue()
    stop = threading.Event()

    def work() -> None:
        try:
            if streaming:
                for piece in _stream(model, call):
                    if stop.is_set():
                        return  # closes the stream: the backend stops generating
                    out.put(piece)
            else:
                out.put(_complete(model, call))
        except BaseException as exc:  # noqa: BLE001 - handed to the driver's thread
            out.put(exc)
        finally:
            out.put(_DONE)

    threading.Thread(target=work, name="codeact-model-call", daemon=True).start()
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BudgetExceeded("seconds", 0.0, 0.0)
            try:
                item = out.get(timeout=remaining)
            except queue.Empty:
                raise BudgetExceeded("seconds", 0.0, 0.0) from None
            if item is _DONE:
                raise ModelError("the model call ended without a reply")
            if isinstance(item, BaseException):
                raise item
            yield item
            if isinstance(item, ModelReply):
                return
    finally:
        stop.set()
