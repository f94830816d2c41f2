"""The agent: owns the model, tools and budgets, and runs the loop sync, streamed or async.

The driving itself is written once, in `driver.drive`; `_drive` and `_adrive` hold a run's
lifetime around the thin sync and async shells (`driver.run_sync`, `driver.run_async`). What else a run does (the run log, resume and replay
feeds, telemetry) lives in a `RunSession`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from codeact.agent.compaction import Compaction
from codeact.agent.driver import Ops, drive, run_async, run_sync
from codeact.agent.files_out import with_files
from codeact.agent.loop import (
    Action,
    ActionFormat,
    Budget,
    FinalAnswerCheck,
    LoopConfig,
    RunAction,
    agent_loop,
)
from codeact.agent.output_type import AnswerType
from codeact.agent.replay import ReplayReport, budget_from_meta, describe_tools
from codeact.agent.run_session import RunObserver, RunSession, SessionMode
from codeact.agent.start_calls import HEADER as START_HEADER
from codeact.agent.start_calls import start_calls_note
from codeact.errors import BudgetExceeded, ConfigError
from codeact.models.base import Message, Model
from codeact.models.images import Image, to_images
from codeact.runs.events import Event, ModelRequested, RunFinished, Step, StepFinished
from codeact.runs.log import RunLog, new_run_id
from codeact.runs.pricing import PriceInput, PriceTable
from codeact.runs.recording import Recording
from codeact.runs.redact import Redactor
from codeact.runs.result import RunResult
from codeact.runs.store import RunStore, open_store
from codeact.runs.telemetry import Telemetry
from codeact.sandbox.base import Execution, ToolCallRecord
from codeact.tools.approval import Approver
from codeact.tools.dispatch import ToolDispatcher
from codeact.tools.tool import Tool, to_tools

if TYPE_CHECKING:
    from codeact.agent.chat import Chat

__all__ = ["Agent", "EventCallback", "StepCallback"]

StepCallback = Callable[[Step], None]
EventCallback = Callable[[Event], None]
StoreOption = RunStore | str | Path | bool | None
_DEFAULT_COMPACTION = Compaction()


class Agent:
    """Shared machinery: owns the model, tools and budgets, and drives `agent_loop`.

    Subclasses provide the action format (`_format`) and how an action is carried out
    (`_perform`). Tools an action calls should be the ones `_run_tools()` returns, and the
    listener `_on_tool_call`, so runs can be logged, resumed and replayed.

    Args:
        model: the chat model; defaults to the embedded local model.
        tools: `@tool` functions or `Tool` instances; they run on the host.
        max_steps: steps before the agent must answer.
        max_tokens: prompt plus completion tokens for the whole run.
        max_seconds: wall-clock seconds for the run (checked between steps).
        max_cost: dollars for the whole run, priced with `prices`.
        prices: model name -> (input, output) dollars per million tokens, over the defaults.
        compaction: how to keep prompts small; None sends every message verbatim.
        store: where runs are logged: None for the default file (`codeact runs` lists them),
            a path, a `RunStore`, or False for no log (then no resume or replay).
        telemetry: a `Telemetry`, an OpenTelemetry TracerProvider, or True for the global
            provider; None (the default) emits no spans.
        output_type: a pydantic model, dataclass, TypedDict (any type pydantic validates) or a
            JSON schema dict: the model is told the schema, `final_answer(value)` is validated on
            the host (a mismatch goes back to the model), and `result.output` is the typed value.
        planning_interval: a planning call (what is known, what remains; a PlanUpdated event)
            before the first step and every N steps after it; None (the default) plans nothing.
        instructions: text appended to the system prompt (your rules, tone, domain facts).
        prompt_template: the system prompt template in place of the shipped one: its text, or a
            `Path` to a file; it has the shipped template's placeholders (`{tools}`, `{imports}`).
        approver: decides tool calls that need approval (`@tool(needs_approval=True)`, a policy
            answering "ask"): a callable `ApprovalRequest -> ApprovalDecision | bool`, or a
            `PendingApprovals` another thread answers. None denies such calls. See
            `codeact.tools.approval`.
        approval_timeout: seconds a call waits for a decision before it is denied (None: no
            limit). The step's time limit is paused meanwhile.
        name: what a manager's code calls this agent by when it is a team member (`agents=`).
        description: what this agent is good for, shown to the manager as the member's docstring.
        agents: team members (agents with a name and description, or `team.Member`s): each is a
            tool `name(task: str) -> str` of this agent, run on the host (see `agent.team`).
    """

    kind = "agent"
    stateful = True
    """Whether actions leave state behind (a kernel's variables). Resume re-runs the recorded
    actions of a stateful agent to rebuild it; set False where actions are independent (plain
    tool calls), and resume then only feeds the recorded results back."""

    def __init__(
        self,
        model: Model | None = None,
        tools: Iterable[Tool | Callable[..., Any]] = (),
        *,
        max_steps: int = 10,
        max_tokens: int | None = None,
        max_seconds: float | None = None,
        max_cost: float | None = None,
        prices: Mapping[str, PriceInput] | None = None,
        compaction: Compaction | None = _DEFAULT_COMPACTION,
        store: StoreOption = None,
        telemetry: Any = None,
        final_answer_checks: Sequence[FinalAnswerCheck] = (),
        step_callbacks: Sequence[StepCallback] = (),
        event_callbacks: Sequence[EventCallback] = (),
        output_type: Any = None,
        planning_interval: int | None = None,
        instructions: str | None = None,
        prompt_template: str | Path | None = None,
        approver: Approver | None = None,
        approval_timeout: float | None = 300.0,
        name: str | None = None,
        description: str | None = None,
        agents: Sequence[Any] = (),
    ) -> None:
        if max_steps < 1:
            raise ConfigError(f"max_steps must be at least 1, got {max_steps}")
        for option, value in (("max_tokens", max_tokens), ("max_seconds", max_seconds), ("max_cost", max_cost)):
            if value is not None and not value > 0:
                raise ConfigError(f"{option} must be positive, got {value!r}")
        if model is None:
            from codeact.models.local import LocalModel

            model = LocalModel()
        self.model = model
        self.tools: dict[str, Tool] = to_tools(list(tools))
        if "final_answer" in self.tools:
            raise ConfigError("`final_answer` is built in; rename your tool")
        self.prices = PriceTable(prices)
        cost_of = self.prices.require(self.model_name).cost if max_cost is not None else None
        self.budget = Budget(max_steps, max_tokens, max_seconds, max_cost, cost_of)
        self.name, self.description = name, description
        self._acting: tuple[RunAction, float] | None = None
        """The action being performed and when it started (team members read the step and budget)."""
        self._team = _team(self, agents)
        self.compaction = compaction
        self.final_answer_checks = tuple(final_answer_checks)
        self.answer_type = AnswerType(output_type) if output_type is not None else None
        if planning_interval is not None and planning_interval < 1:
            raise ConfigError(f"planning_interval must be at least 1, got {planning_interval}")
        self.planning_interval = planning_interval
        self.instructions = instructions.strip() if instructions else None
        self.prompt_template = _template_text(prompt_template)
        self.step_callbacks = list(step_callbacks)
        self.event_callbacks = list(event_callbacks)
        self.approver = approver
        self.approval_timeout = approval_timeout
        self.run_meta: dict[str, Any] = {}
        """Extra facts kept with each run in the log (the CLI keeps its options here)."""
        self._store_option = store
        self._store: RunStore | None = None
        self._telemetry = _telemetry(telemetry)
        self._session: RunSession | None = None
        self._deadline: float | None = None
        self._history: tuple[Message, ...] = ()
        self._conversation_id: str | None = None
        self._turns = 0
        self._last_run_id: str | None = None
        self._prefix: tuple[Message, ...] | None = None
        self._images: tuple[Image, ...] = ()  # the next run's task images (`run(task, images=...)`)
        self._keep_state = False
        """Keep the kernel after this run (a conversation goes on); see `run(reset=False)`."""
        self._restarted = False

    @property
    def model_name(self) -> str:
        return str(getattr(self.model, "name", type(self.model).__name__))

    @property
    def store(self) -> RunStore | None:
        """The run log (opened on first use); None when the agent keeps no log."""
        if self._store is None and self._store_option is not False:
            self._store = open_store(self._store_option)
            if self._store is None:
                self._store_option = False
        return self._store

    # -- what subclasses provide --------------------------------------------------------------
    def _format(self) -> ActionFormat:
        raise NotImplementedError

    def _perform(self, action: Action) -> Execution:
        raise NotImplementedError

    def _begin(self) -> None:
        """Acquire per-run resources (a kernel)."""

    def _end(self) -> None:
        """Release per-run resources."""

    def _workspace(self) -> Path | None:
        """The host directory this run's actions work in, whose changes `RunResult.files` lists."""
        return None

    def _run_tools(self) -> dict[str, Tool]:
        """The tools this run's actions must call: stand-ins during resume and replay."""
        return self._session.tools(self.tools) if self._session is not None else dict(self.tools)

    def _wire_approvals(self, dispatcher: ToolDispatcher | None) -> None:
        """Let `dispatcher` (the one this run's tool calls go through) ask this agent's approver,
        and log each request and decision in this run."""
        if dispatcher is None:
            if any(t.needs_approval for t in self.tools.values()):
                raise ConfigError("tools that need approval need a sandbox with a tool dispatcher "
                                  "(LocalSandbox, ProcessSandbox); this one has none")
            return
        session = self._session
        dispatcher.approver = self.approver
        dispatcher.approval_timeout = self.approval_timeout
        dispatcher.approval_listener = session.on_approval if session is not None else None
        dispatcher.approval_context = session.approval_context if session is not None else None

    def _on_tool_call(self, record: ToolCallRecord) -> None:
        """Give this to the sandbox as `on_tool_call`: each call is logged as it happens."""
        session = self._session
        if session is not None:
            session.on_tool_call(record)

    # -- public API ---------------------------------------------------------------------------
    @overload
    def run(self, task: str, *, stream: Literal[False] = False, reset: bool = True,
            images: Sequence[Any] | None = None) -> RunResult: ...
    @overload
    def run(self, task: str, *, stream: Literal[True], reset: bool = True,
            images: Sequence[Any] | None = None) -> Iterator[Event]: ...
    def run(self, task: str, *, stream: bool = False, reset: bool = True,
            images: Sequence[Any] | None = None) -> RunResult | Iterator[Event]:
        """Solve `task`. With `stream=True`, yield events as they happen; the last is RunFinished.

        A streamed run (or one with `event_callbacks`) also gets the model's reply as it is
        generated, in `ModelDelta` events, from backends that stream.

        With `reset=False` the run is a turn of a conversation: it starts from the previous
        turn's messages, and the kernel (its variables, imports, files) is kept from one turn to
        the next until `reset()`, a run with `reset=True`, or `close()`. Each turn is its own run
        in the log, linked by `conversation_id` and `previous_run` in its meta. See `chat()`.

        `images` go with the task: file paths, PNG/JPEG/GIF/WebP bytes, PIL images (see
        `codeact.models.images.to_image`). A model that does not read images gets a note for each."""
        self._images = to_images(images)
        self._start_turn(reset)
        events = self._drive(task, lambda: self._session_for("record"), deltas=stream or self._watched)
        return events if stream else _result_of(events)

    # -- conversations ------------------------------------------------------------------------
    @property
    def history(self) -> tuple[Message, ...]:
        """The conversation so far (what the next `run(task, reset=False)` starts from)."""
        return self._history

    @property
    def conversation_id(self) -> str | None:
        return self._conversation_id

    def chat(self) -> Chat:
        """A new conversation with this agent: `chat.send(text)` is one turn (a RunResult)."""
        from codeact.agent.chat import Chat

        return Chat(self)

    def reset(self) -> None:
        """End the conversation: forget its messages and release the kernel kept for it."""
        if self._session is not None:
            raise ConfigError("reset() while a run is in progress; wait for it to end")
        self._history = ()
        self._conversation_id = None
        self._turns = 0
        self._last_run_id = None
        self._keep_state = False
        self._release_state()

    def _release_state(self) -> None:
        """Release what a conversation kept between turns (a kernel); nothing by default."""

    def _state_lost_between_runs(self) -> bool:
        """Whether a run that did not ask to keep state (reset=True) lost it when it ended."""
        return False

    def _start_turn(self, reset: bool) -> None:
        if self._session is not None:
            return  # `_claim` reports the concurrent run
        if reset:
            self.reset()
        self._restarted = bool(self._history) and not self._keep_state and self._state_lost_between_runs()
        self._keep_state = not reset
        if self._conversation_id is None:
            self._conversation_id = new_run_id()
        self._turns += 1
        self._prefix = self._history

    @overload
    def resume(self, run_id: str, *, stream: Literal[False] = False, live_tools: bool = False) -> RunResult: ...
    @overload
    def resume(self, run_id: str, *, stream: Literal[True], live_tools: bool = False) -> Iterator[Event]: ...
    def resume(self, run_id: str, *, stream: bool = False, live_tools: bool = False) -> RunResult | Iterator[Event]:
        """Continue a crashed, interrupted or budget-stopped run from its last completed step.

        The model sees the history it saw; the kernel's state is rebuilt by running the recorded
        code again, with tool results served from the log (tools are not called twice) unless
        `live_tools` asks to call them again. Steps already done are not shown again: the
        stream starts with a RunResumed event.
        """
        recording, log = self._open_recording(run_id)
        events = self._drive(recording.task, lambda: self._session_for(
            "resume", recording=recording, log=log, live_tools=live_tools), deltas=stream or self._watched)
        return events if stream else _result_of(events)

    def replay(self, run_id: str, *, live_tools: bool = False) -> ReplayReport:
        """Re-run a recorded run with its recorded model replies, live code and recorded tool
        results (or live ones with `live_tools`, compared to the recording), and report where
        the observations diverge. Nothing is written to the log; no model is called."""
        store = self._require_store("replay")
        recording = Recording.load(store, run_id)
        budget = budget_from_meta(store.get(recording.run_id).meta, recording, self.prices)
        holder: list[RunSession] = []

        def session() -> RunSession:
            holder.append(self._session_for("replay", recording=recording, live_tools=live_tools))
            return holder[0]

        result = _result_of(self._drive(recording.task, session, budget=budget))
        return ReplayReport(recording.run_id, result, tuple(holder[0].divergences))

    async def arun(self, task: str, *, reset: bool = True, images: Sequence[Any] | None = None) -> RunResult:
        """`run`, driven from an event loop (`reset=False`: the next turn of a conversation)."""
        self._images = to_images(images)
        self._start_turn(reset)
        loop = asyncio.get_running_loop()
        return await _aresult_of(self._adrive(task, lambda: self._session_for("record", loop=loop),
                                              deltas=self._watched))

    async def aresume(self, run_id: str, *, live_tools: bool = False) -> RunResult:
        """`resume`, driven from an event loop."""
        recording, log = self._open_recording(run_id)
        loop = asyncio.get_running_loop()
        events = self._adrive(recording.task, lambda: self._session_for(
            "resume", recording=recording, log=log, live_tools=live_tools, loop=loop), deltas=self._watched)
        return await _aresult_of(events)

    async def astream(self, task: str) -> AsyncIterator[Event]:
        """Async events: the model is awaited; code runs in a worker thread; async tools run on
        this event loop. Many agents can run at once in one loop (one run per agent at a time)."""
        self._start_turn(True)
        loop = asyncio.get_running_loop()
        async for event in self._adrive(task, lambda: self._session_for("record", loop=loop), deltas=True):
            yield event

    @property
    def _watched(self) -> bool:
        """Someone reads events as they happen, so live model calls stream (ModelDelta)."""
        return bool(self.event_callbacks)

    def close(self) -> None:
        if self._session is None:
            self.reset()
        self.model.close()
        if self._store is not None and not isinstance(self._store_option, RunStore):
            self._store.close()
            self._store = None

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the drivers --------------------------------------------------------------------------
    # Thin shells around `driver.drive`: they own the run's lifetime (claim the agent, begin,
    # end, close the session); `run_sync` and `run_async` perform its ops.
    def _drive(self, task: str, make_session: Callable[[], RunSession],
               budget: Budget | None = None, *, deltas: bool = False) -> Iterator[Event]:
        session = self._claim(make_session)
        try:
            self._begin()
            for event in run_sync(self._ops(task, session, budget), self.model, stream=deltas, notify=self._notify):
                self._remember(session, event)
                yield event
        except BaseException as exc:
            session.close(exc)
            raise
        finally:
            self._session = None
            try:
                self._end()
            finally:
                session.close()

    async def _adrive(self, task: str, make_session: Callable[[], RunSession],
                      budget: Budget | None = None, *, deltas: bool = False) -> AsyncIterator[Event]:
        session = self._claim(make_session)
        try:
            await asyncio.to_thread(self._begin)
            async for event in run_async(self._ops(task, session, budget), self.model, stream=deltas,
                                         notify=self._notify):
                self._remember(session, event)
                yield event
        except BaseException as exc:
            session.close(exc)
            raise
        finally:
            self._session = None
            try:
                await asyncio.to_thread(self._end)
            finally:
                session.close()

    def _remember(self, session: RunSession, event: Event) -> None:
        """A recorded run's end: its messages are the conversation the next turn continues."""
        if session.mode == "record" and isinstance(event, RunFinished) and event.result is not None:
            self._history = _continuable(event.result.messages)
            self._last_run_id = event.result.run_id or self._last_run_id

    def _ops(self, task: str, session: RunSession, budget: Budget | None) -> Ops:
        config = self._config(session.run_id, budget)
        prefix, self._prefix = self._prefix, None
        images, self._images = self._images, ()
        if session.mode == "record":
            fmt = self._format()
            text = fmt.task_message(task)
            start_note = start_calls_note(self.tools)
            if start_note:
                text = f"{text}\n\n{start_note}"
            if prefix:
                if self._restarted:  # the last run was not a turn: its kernel is gone, its messages are not
                    text = f"{_RESTARTED}\n{text}"
                config = dataclasses.replace(config, history=(*prefix, Message("user", text, images=images)))
            elif images or start_note:  # the task's message carries them
                config = dataclasses.replace(config, history=(
                    Message("system", fmt.system_prompt()), Message("user", text, images=images)))
        elif session.recording is not None:  # resume, replay: a conversation's turn starts where it did
            config = dataclasses.replace(config, history=_recorded_head(session.recording))
        loop = agent_loop(task, self._format(), config)
        return drive(with_files(loop, self._workspace()), session, self._performer)

    def _claim(self, make_session: Callable[[], RunSession]) -> RunSession:
        if self._session is not None:
            raise ConfigError(
                "this agent is already running a task; use one agent per concurrent run "
                "(its kernel holds one run's state)"
            )
        self._session = make_session()
        return self._session

    def _performer(self, effect: RunAction) -> Callable[[Action], Execution]:
        """`_perform` for this effect, with the run's deadline in force while it runs."""

        def perform(action: Action) -> Execution:
            if effect.deadline is not None and effect.deadline - time.monotonic() <= 0:
                raise BudgetExceeded("seconds", 0.0, 0.0)
            self._deadline = effect.deadline
            self._acting = (effect, time.monotonic())
            try:
                execution = self._perform(action)
            finally:
                self._deadline = None
                self._acting = None
            return self._team.settle(execution) if self._team is not None else execution

        return perform

    def _time_left(self, limit: float | None) -> float | None:
        """`limit` (a step timeout), shortened to what is left of the run's time budget.

        An agent kind's `_perform` passes this as its action's timeout, so the run's deadline
        interrupts the step in progress instead of waiting for it to end."""
        if self._deadline is None:
            return limit
        left = max(self._deadline - time.monotonic(), 0.001)
        return left if limit is None else min(limit, left)

    def _notify(self, event: Event) -> None:
        for callback in self.event_callbacks:
            callback(event)
        if isinstance(event, StepFinished):
            for step_callback in self.step_callbacks:
                step_callback(event.step)

    # -- sessions -----------------------------------------------------------------------------
    def _config(self, run_id: str | None = None, budget: Budget | None = None) -> LoopConfig:
        return LoopConfig(
            agent=self.kind,
            model=self.model_name,
            tools=tuple(self.tools),
            budget=budget or self.budget,
            final_answer_checks=self.final_answer_checks,
            run_id=run_id,
            compaction=self.compaction,
            parse_answer=self.answer_type.parse if self.answer_type is not None else None,
            planning_interval=self.planning_interval,
        )

    def _prompt_notes(self) -> str:
        """What the system prompt gains after its template: the answer's schema, your instructions.

        Fixed for the agent's life, so the system prompt stays byte-identical (prefix cache)."""
        notes = [self.answer_type.prompt_note()] if self.answer_type is not None else []
        if self.model.supports_images and self.kind == "code":  # only a model that sees images is told
            notes.append(_DISPLAY_NOTE)
        if self.instructions:
            notes.append(self.instructions)
        return "".join("\n\n" + note for note in notes)

    def _session_for(
        self,
        mode: SessionMode,
        *,
        recording: Recording | None = None,
        log: RunLog | None = None,
        live_tools: bool = False,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> RunSession:
        run_id = recording.run_id if recording is not None and mode == "resume" else None
        if mode == "record" and self.store is not None:
            run_id = new_run_id()
            log = RunLog(self.store, run_id, redactor=self._redactor(), prices=self.prices, meta=self._meta(),
                         buffered=True)
        observers: list[RunObserver] = []
        if self._telemetry is not None:
            observers.append(self._telemetry.observer(run_id))
        return RunSession(
            run_id=run_id,
            log=log,
            observers=observers,
            mode=mode,
            recording=recording,
            live_tools=live_tools,
            format_observation=self._format().format_observation,
            loop=loop,
            reexecute=self.stateful,
        )

    def _open_recording(self, run_id: str) -> tuple[Recording, RunLog]:
        store = self._require_store("resume")
        recording = Recording.load(store, run_id)
        started = recording.started
        if started.agent != self.kind:
            raise ConfigError(f"run {recording.run_id} was made by a {started.agent!r} agent; "
                              f"resume it with one, not a {self.kind!r} agent")
        missing = [name for name in started.tools if name not in self.tools]
        if missing:
            raise ConfigError(f"run {recording.run_id} used tools this agent lacks: {', '.join(missing)}; "
                              "give the agent the same tools")
        if recording.finished is not None and recording.finished.status == "success":
            raise ConfigError(f"run {recording.run_id} already finished with an answer; nothing to resume "
                              "(`replay` re-runs it)")
        log = RunLog.reopen(store, recording.run_id, redactor=self._redactor(), prices=self.prices,
                            model=self.model_name, buffered=True)
        return recording, log

    def _require_store(self, what: str) -> RunStore:
        store = self.store
        if store is None:
            raise ConfigError(f"{what} reads the run log, but this agent keeps none (store=False)")
        return store

    def _redactor(self) -> Redactor:
        return Redactor.from_environment(tools=self.tools.values())

    def _meta(self) -> dict[str, Any]:
        b = self.budget
        turn = {"conversation_id": self._conversation_id, "turn": self._turns,
                "previous_run": self._last_run_id if self._turns > 1 else None} if self._conversation_id else {}
        return {
            **turn,
            "budget": {"max_steps": b.max_steps, "max_tokens": b.max_tokens, "max_seconds": b.max_seconds,
                       "max_cost": b.max_cost},
            "tools": describe_tools(self.tools),
            **self.run_meta,
        }


def _team(agent: Agent, members: Sequence[Any]) -> Any:
    """The members as tools of `agent` (see `agent.team`); None without members."""
    if not members:
        return None
    from codeact.agent.team import Team

    team = Team(agent, members)
    clash = sorted(set(team.tools) & set(agent.tools))
    if clash:
        raise ConfigError(f"a team member and a tool are both named {clash[0]!r}; rename one")
    agent.tools.update(team.tools)
    return team


_DISPLAY_NOTE = ("To look at an image (a matplotlib figure, a PIL image, a numpy array of pixels, or an "
                "image file's path), call display(obj); you see it after the step.")
"""What the code agent's prompt says about `display()`, for models that read images."""


def _template_text(template: str | Path | None) -> str | None:
    if template is None or isinstance(template, str):
        return template
    try:
        return Path(template).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the prompt template {str(template)!r}: {exc}") from exc


def _recorded_head(recording: Recording) -> tuple[Message, ...]:
    """The messages a recorded conversation turn started from (its first request), or () for a
    run that started from its system prompt and task alone (the loop builds those again; not when
    tools called at start are in the task's message: they are not called again)."""
    first = next((e for e in recording.events if isinstance(e, ModelRequested)), None)
    if first is None or first.keep != 0:
        return ()
    if len(first.messages) <= 2 and not any(m.images or START_HEADER in m.content for m in first.messages):
        return ()  # kept: a task's images, the results of tools called at start
    return tuple(first.messages)


_RESTARTED = "(The Python session was restarted since the last task: its variables are gone.)"


def _continuable(messages: Sequence[Message]) -> tuple[Message, ...]:
    """`messages` without a last assistant message whose tool calls never got their results (a
    run cut short mid-step): chat APIs refuse a conversation that continues after one."""
    out = list(messages)
    while out and out[-1].role == "assistant" and out[-1].tool_calls:
        out.pop()
    return tuple(out)


def _telemetry(option: Any) -> Telemetry | None:
    if option is None or option is False:
        return None
    if option is True:
        return Telemetry()
    if isinstance(option, Telemetry):
        return option
    return Telemetry(option)  # a TracerProvider


def _result_of(events: Iterator[Event]) -> RunResult:
    result = None
    for event in events:  # run to the end, so the kernel is released before returning
        if isinstance(event, RunFinished):
            result = event.result
    if result is None:  # pragma: no cover - the loop always ends with RunFinished
        raise AssertionError("the loop ended without RunFinished")
    return result  # type: ignore[no-any-return]


async def _aresult_of(events: AsyncIterator[Event]) -> RunResult:
    result = None
    async for event in events:
        if isinstance(event, RunFinished):
            result = event.result
    if result is None:  # pragma: no cover
        raise AssertionError("the loop ended without RunFinished")
    return result  # type: ignore[no-any-return]
