"""The drivers around the loop: sync, streaming and async, shared by every agent kind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import Any, Literal, overload

from codeact.agent.loop import (
    Action,
    ActionFormat,
    Budget,
    CallModel,
    FinalAnswerCheck,
    LoopConfig,
    RunAction,
    agent_loop,
)
from codeact.agent.result import RunResult
from codeact.errors import ConfigError, ModelError
from codeact.models.base import Model, ModelReply
from codeact.runs.events import Event, RunFinished, Step, StepFinished
from codeact.sandbox.base import Execution
from codeact.tools.tool import Tool, to_tools

__all__ = ["Agent", "EventCallback", "StepCallback"]

StepCallback = Callable[[Step], None]
EventCallback = Callable[[Event], None]


class Agent:
    """Shared machinery: owns the model, tools and budgets, and drives `agent_loop`.

    Subclasses provide the action format (`_format`) and how an action is carried out
    (`_perform`).
    """

    kind = "agent"

    def __init__(
        self,
        model: Model | None = None,
        tools: Iterable[Tool | Callable[..., Any]] = (),
        *,
        max_steps: int = 10,
        max_tokens: int | None = None,
        max_seconds: float | None = None,
        final_answer_checks: Sequence[FinalAnswerCheck] = (),
        step_callbacks: Sequence[StepCallback] = (),
        event_callbacks: Sequence[EventCallback] = (),
    ) -> None:
        if max_steps < 1:
            raise ConfigError(f"max_steps must be at least 1, got {max_steps}")
        if model is None:
            from codeact.models.local import LocalModel

            model = LocalModel()
        self.model = model
        self.tools: dict[str, Tool] = to_tools(list(tools))
        if "final_answer" in self.tools:
            raise ConfigError("`final_answer` is built in; rename your tool")
        self.budget = Budget(max_steps=max_steps, max_tokens=max_tokens, max_seconds=max_seconds)
        self.final_answer_checks = tuple(final_answer_checks)
        self.step_callbacks = list(step_callbacks)
        self.event_callbacks = list(event_callbacks)

    # -- what subclasses provide --------------------------------------------------------------
    def _format(self) -> ActionFormat:
        raise NotImplementedError

    def _perform(self, action: Action) -> Execution:
        raise NotImplementedError

    def _begin(self) -> None:
        """Acquire per-run resources (a kernel)."""

    def _end(self) -> None:
        """Release per-run resources."""

    # -- public API ---------------------------------------------------------------------------
    @overload
    def run(self, task: str, *, stream: Literal[False] = False) -> RunResult: ...
    @overload
    def run(self, task: str, *, stream: Literal[True]) -> Iterator[Event]: ...
    def run(self, task: str, *, stream: bool = False) -> RunResult | Iterator[Event]:
        """Solve `task`. With `stream=True`, yield events as they happen; the last is RunFinished."""
        if stream:
            return self._events(task)
        for event in self._events(task):
            if isinstance(event, RunFinished):
                return event.result  # type: ignore[no-any-return]
        raise AssertionError("the loop ended without RunFinished")  # pragma: no cover

    async def arun(self, task: str) -> RunResult:
        async for event in self.astream(task):
            if isinstance(event, RunFinished):
                return event.result  # type: ignore[no-any-return]
        raise AssertionError("the loop ended without RunFinished")  # pragma: no cover

    async def astream(self, task: str) -> AsyncIterator[Event]:
        """Async events: the model is awaited; code runs in a worker thread."""
        loop = agent_loop(task, self._format(), self._config())
        await asyncio.to_thread(self._begin)
        try:
            value: Any = None
            throw: BaseException | None = None
            while True:
                try:
                    item = loop.throw(throw) if throw is not None else loop.send(value)
                except StopIteration:
                    return
                value, throw = None, None
                if isinstance(item, CallModel):
                    try:
                        value = await self.model.acomplete(
                            list(item.messages), stop=item.stop or None, tools=item.tools or None
                        )
                    except ModelError as exc:
                        throw = exc
                elif isinstance(item, RunAction):
                    value = await asyncio.to_thread(self._perform, item.action)
                else:
                    self._notify(item)
                    yield item
        finally:
            await asyncio.to_thread(self._end)

    def close(self) -> None:
        self.model.close()

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the sync driver ----------------------------------------------------------------------
    def _config(self) -> LoopConfig:
        return LoopConfig(
            agent=self.kind,
            model=getattr(self.model, "name", type(self.model).__name__),
            tools=tuple(self.tools),
            budget=self.budget,
            final_answer_checks=self.final_answer_checks,
        )

    def _events(self, task: str) -> Iterator[Event]:
        loop = agent_loop(task, self._format(), self._config())
        self._begin()
        try:
            yield from self._drive(loop)
        finally:
            self._end()

    def _drive(self, loop: Any) -> Iterator[Event]:
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
                    value = self._call_model(item)
                elif isinstance(item, RunAction):
                    value = self._perform(item.action)
                else:
                    self._notify(item)
                    yield item
            except (ModelError, KeyboardInterrupt) as exc:
                throw = exc

    def _call_model(self, call: CallModel) -> ModelReply:
        return self.model.complete(list(call.messages), stop=call.stop or None, tools=call.tools or None)

    def _notify(self, event: Event) -> None:
        for callback in self.event_callbacks:
            callback(event)
        if isinstance(event, StepFinished):
            for step_callback in self.step_callbacks:
                step_callback(event.step)


