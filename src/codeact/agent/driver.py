"""One driver for the loop, with thin sync and async shells (httpx's pattern for auth flows).

`drive` is the driver's logic, written once as a generator: it takes the loop's effects, asks the
run's `RunSession` for a recorded answer, records every event, and throws the signals that end a
run (a model failure, the deadline, Ctrl-C) back into the loop. What it cannot do without
choosing between threads and awaits it yields to its shell as an *op*:

- `CallModel`: a live model call; the shell sends back the ModelReply and passes the reply's
  chunks (ModelDelta) on as they come;
- `Blocking`: work that blocks (running an action in the kernel); the sync shell calls it, the
  async shell runs it in a worker thread;
- an `Event`: for the caller's stream.

The shells (`run_sync`, `run_async`) do only that I/O, so what a run catches, records and streams
cannot drift between them; `Agent._drive` and `Agent._adrive` hold the run's lifetime around them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any

from codeact.agent._model_call import acall_model, call_model
from codeact.agent.loop import Action, CallModel, Loop, RunAction
from codeact.agent.run_session import RunSession
from codeact.errors import BudgetExceeded, ModelError
from codeact.models.base import Model
from codeact.runs.events import Event, ModelDelta
from codeact.sandbox.base import Execution

__all__ = ["SIGNALS", "Blocking", "Op", "Ops", "drive", "run_async", "run_sync"]

SIGNALS = (ModelError, BudgetExceeded, KeyboardInterrupt)
"""What a shell throws back into `drive` (and `drive` into the loop): each ends the run with a
status of its own. Anything else ends the drive itself."""


@dataclass(frozen=True)
class Blocking:
    """Op: `fn(*args)`, which may block; the shell sends back its result or throws its signal."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()


Op = CallModel | Blocking | Event
Ops = Generator[Op, Any, None]


def drive(loop: Loop, session: RunSession, performer: Callable[[RunAction], Callable[[Action], Execution]]) -> Ops:
    """Run `loop` to its end through `session`; yield the ops a shell must perform.

    Args:
        loop: the agent loop.
        session: the run's log writer and recorded-data feed.
        performer: the agent's way of carrying out an action, for this effect (its deadline).
    """
    value: Any = None
    throw: BaseException | None = None
    while True:
        try:
            item = loop.throw(throw) if throw is not None else loop.send(value)
        except StopIteration:
            return
        value, throw = None, None
        try:
            if isinstance(item, CallModel):
                value = session.model_reply(item)
                if value is None:
                    value = yield item
            elif isinstance(item, RunAction):
                value = yield Blocking(session.perform, (item, performer(item)))
            else:
                yield from session.emit(item)
        except SIGNALS as exc:
            throw = exc


def run_sync(ops: Ops, model: Model, *, stream: bool, notify: Callable[[Event], None]) -> Iterator[Event]:
    """The sync shell: blocking work runs here; the model is called in this thread (or a daemon
    thread when the run has a deadline); events and reply chunks are passed to `notify` and on."""
    value: Any = None
    throw: BaseException | None = None
    while True:
        try:
            op = ops.throw(throw) if throw is not None else ops.send(value)
        except StopIteration:
            return
        value, throw = None, None
        try:
            if isinstance(op, Blocking):
                value = op.fn(*op.args)
            elif isinstance(op, CallModel):
                for piece in call_model(model, op, stream=stream):
                    if isinstance(piece, ModelDelta):
                        notify(piece)
                        yield piece
                    else:
                        value = piece
            else:
                notify(op)
                yield op
        except SIGNALS as exc:
            throw = exc


async def run_async(ops: Ops, model: Model, *, stream: bool,
                    notify: Callable[[Event], None]) -> AsyncIterator[Event]:
    """The async shell: blocking work runs in a worker thread; the model is awaited."""
    value: Any = None
    throw: BaseException | None = None
    while True:
        try:
            op = ops.throw(throw) if throw is not None else ops.send(value)
        except StopIteration:
            return
        value, throw = None, None
        try:
            if isinstance(op, Blocking):
                value = await asyncio.to_thread(op.fn, *op.args)
            elif isinstance(op, CallModel):
                async for piece in acall_model(model, op, stream=stream):
                    if isinstance(piece, ModelDelta):
                        notify(piece)
                        yield piece
                    else:
                        value = piece
            else:
                notify(op)
                yield op
        except SIGNALS as exc:
            throw = exc
