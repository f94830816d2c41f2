"""The step loop, written once, with no I/O inside.

`agent_loop` is a generator. It yields *effects* (`CallModel`, `RunAction`) that the driver
performs and sends back the result of, and *events* that the driver passes on to the caller
(send back None). The sync, async and streaming drivers, replay and resume all wrap this one
loop, so they cannot drift apart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from codeact.agent.compaction import Compaction, Compactor, estimate_tokens
from codeact.agent.observation import (
    OUTPUT_SLOT,
    TASK_SLOT,
    quote_output,
    quote_task,
    showed_output,
    truncate,
)
from codeact.agent.techniques.base import Review, StepReview, review_reply, review_step
from codeact.errors import BudgetExceeded, ModelError
from codeact.models.base import Message, ModelReply, ToolSpec, Usage
from codeact.models.images import Image
from codeact.runs.events import (
    ActionParsed,
    BudgetHit,
    Event,
    ImagesShown,
    ModelReplied,
    Observed,
    PlanUpdated,
    RunFinished,
    RunStarted,
    RunStatus,
    Step,
    StepFinished,
)
from codeact.runs.result import RunResult
from codeact.sandbox.base import Execution

__all__ = [
    "Action",
    "ActionFormat",
    "Budget",
    "CallModel",
    "FinalAnswerCheck",
    "LoopConfig",
    "NoAction",
    "RunAction",
    "agent_loop",
]

FinalAnswerCheck = Callable[[Any], "bool | str | None"]
"""Return True/None to accept the answer; False or a reason string to send the model back to work."""


@dataclass(frozen=True)
class CallModel:
    """Effect: ask the model. The driver sends back a ModelReply, or throws a ModelError, or
    BudgetExceeded when the run's `deadline` passed before the reply came."""

    step: int
    messages: tuple[Message, ...]
    stop: tuple[str, ...] = ()
    tools: tuple[ToolSpec, ...] = ()
    deadline: float | None = None
    """`time.monotonic()` by which the run must end (its `max_seconds`); None: no limit."""
    purpose: str = "step"
    """"step", or "plan" for a planning call (`planning_interval`): its reply is a plan, not an action."""
    temperature: float | None = None
    """Sample this reply at this temperature (a technique asked, after a repeat); None: the model's own."""


@dataclass(frozen=True)
class RunAction:
    """Effect: carry out a parsed action. The driver sends back an Execution (interrupted at
    `deadline` at the latest), or throws BudgetExceeded when no time is left to start it."""

    step: int
    action: Action
    deadline: float | None = None
    spent: Usage = Usage()
    """Tokens the run has used so far, sub-agents' included (what is left goes to a sub-agent)."""
    spent_cost: float | None = None
    """Dollars the run has spent so far, when it has a cost budget."""
    last: bool = False
    """The step after the step limit's request for an answer: the run ends with it."""


@dataclass(frozen=True)
class Action:
    """What the model asked to do: code to run, or native tool calls (`payload`)."""

    thought: str
    code: str | None = None
    payload: Any = None
    note: str = ""


@dataclass(frozen=True)
class NoAction:
    """The reply held no usable action; `message` tells the model the expected format.

    `stated_answer` is code giving the answer the reply stated in words ("Final answer: 10.5" as
    `final_answer(10.5)`), or None; the loop runs it instead when the step before showed output.
    `before_tools`, when set, is told instead of `message` while no tool has been called in the run;
    `after_output`, right after a step that showed output (quoted at `OUTPUT_SLOT`).
    """

    thought: str
    message: str
    stated_answer: str | None = None
    before_tools: str | None = None
    after_output: str | None = None


class ActionFormat(Protocol):
    """How an agent kind writes prompts and reads actions (code blocks, tool calls...)."""

    name: str
    stop: tuple[str, ...]
    tool_specs: tuple[ToolSpec, ...]

    def system_prompt(self) -> str: ...
    def task_message(self, task: str) -> str: ...
    def read(self, reply: ModelReply) -> Action | NoAction: ...
    def assistant_message(self, reply: ModelReply, action: Action | NoAction) -> Message: ...
    def observation_messages(self, action: Action | None, observation: str) -> list[Message]: ...
    def format_observation(self, execution: Execution) -> str: ...
    def final_request(self) -> str: ...


_NO_USAGE = Usage()


@dataclass(frozen=True)
class Budget:
    """Limits that end a run cleanly (status "max_steps"/"budget_exceeded"), never by exception."""

    max_steps: int = 10
    max_tokens: int | None = None
    max_seconds: float | None = None
    max_cost: float | None = None
    cost_of: Callable[[Usage], float] | None = None

    def check(self, usage: Usage, seconds: float, extra: Usage = _NO_USAGE,
              extra_cost: float = 0.0) -> tuple[str, float, float, str] | None:
        """(budget, limit, used, message) for the first budget that ran out, else None.

        `extra` is what sub-runs (sub-agents) spent and `extra_cost` its price, by their own
        models: both count, while `cost_of` prices only the run's own `usage`."""
        tokens = usage.total_tokens + extra.total_tokens
        if self.max_tokens is not None and tokens > self.max_tokens:
            return ("tokens", self.max_tokens, tokens,
                    f"token budget exhausted: used {tokens:,} of {self.max_tokens:,}")
        if self.max_seconds is not None and seconds > self.max_seconds:
            return ("seconds", self.max_seconds, seconds,
                    f"time budget exhausted: {seconds:.1f} s of {self.max_seconds:g} s")
        if self.max_cost is not None and self.cost_of is not None:
            cost = self.cost_of(usage) + extra_cost
            if cost > self.max_cost:
                return ("cost", self.max_cost, cost, f"cost budget exhausted: ${cost:.4f} of ${self.max_cost:g}")
        return None

    def check_prompt(self, usage: Usage, prompt_tokens: int, extra: Usage = _NO_USAGE,
                     extra_cost: float = 0.0) -> tuple[str, float, float, str] | None:
        """Stop *before* a model call whose prompt alone would overrun the token or cost budget."""
        projected = Usage(usage.prompt_tokens + prompt_tokens, usage.completion_tokens)
        used = usage.total_tokens + extra.total_tokens
        if self.max_tokens is not None and projected.total_tokens + extra.total_tokens > self.max_tokens:
            message = (f"token budget exhausted: used {used:,} of {self.max_tokens:,}, and "
                       f"the next prompt needs about {prompt_tokens:,} more")
            return ("tokens", self.max_tokens, used, message)
        if self.max_cost is not None and self.cost_of is not None:
            cost = self.cost_of(projected) + extra_cost
            if cost > self.max_cost:
                message = (f"cost budget exhausted: the next prompt would bring the run to ${cost:.4f} "
                           f"of ${self.max_cost:g}")
                return ("cost", self.max_cost, self.cost_of(usage) + extra_cost, message)
        return None


@dataclass(frozen=True)
class LoopConfig:
    agent: str
    model: str
    tools: tuple[str, ...]
    budget: Budget = Budget()
    final_answer_checks: tuple[FinalAnswerCheck, ...] = ()
    history: tuple[Message, ...] = field(default=())
    """Messages to start from instead of system prompt + task."""
    first_step: int = 1
    run_id: str | None = None
    compaction: Compaction | None = None
    """How to keep prompts small; None sends every message verbatim."""
    planning_interval: int | None = None
    """A planning call before the first step and every N steps after it; None: no planning."""
    parse_answer: Callable[[Any], Any] | None = None
    """Turns a final answer into the typed output (`output_type`); a ValueError rejects it."""
    techniques: tuple[StepReview, ...] = ()
    """Habits that read each action and may add a note or send an answer back (`agent.techniques`)."""


Loop = Generator["CallModel | RunAction | Event", Any, RunResult]


def agent_loop(task: str, fmt: ActionFormat, config: LoopConfig) -> Loop:
    """Run steps until `final_answer`, a budget, or a model failure ends the run."""
    started = time.monotonic()
    budget = config.budget
    deadline = started + budget.max_seconds if budget.max_seconds is not None else None
    head: list[Message] = list(config.history) or [
        Message("system", fmt.system_prompt()),
        Message("user", fmt.task_message(task)),
    ]
    turns: list[tuple[int, list[Message]]] = []
    compactor = Compactor(config.compaction) if config.compaction is not None else None
    sizes: dict[str, float] = {}
    steps: list[Step] = []
    usage = Usage()
    extra, extra_cost = Usage(), 0.0  # what sub-agents spent (teams): it counts against the budgets
    partial: Any = None  # the best answer so far, for runs that end without final_answer
    shown: list[Image] = []  # images the steps showed, for RunResult.images
    temperature: float | None = None  # for the next step's reply only, when a technique asks

    def prompt() -> tuple[Message, ...]:
        if compactor is not None:
            return tuple(compactor.prompt(head, turns))
        return tuple(head + [m for _, turn in turns for m in turn])

    def finish(status: RunStatus, output: Any, error: str | None = None) -> Loop:
        transcript = tuple(head + [m for _, turn in turns for m in turn])
        total = usage + extra
        result = RunResult(output, status, tuple(steps), total, time.monotonic() - started, error,
                           config.run_id, messages=transcript, images=tuple(shown))
        yield RunFinished(status, output, total, len(steps), result.seconds, error, result)
        return result

    def out_of_budget(index: int, hit: tuple[str, float, float, str]) -> Loop:
        budget_name, limit, used, message = hit
        yield BudgetHit(index, budget_name, limit, used, message)
        return (yield from finish("budget_exceeded", partial, message))

    def out_of_time(index: int) -> Loop:
        """The driver stopped a model call or an action at the run's deadline."""
        used = time.monotonic() - started
        limit = budget.max_seconds or 0.0
        hit = ("seconds", limit, used, f"time budget exhausted: {used:.1f} s of {limit:g} s")
        return (yield from out_of_budget(index, hit))

    yield RunStarted(task, config.agent, config.model, config.tools, budget.max_steps, config.run_id)
    last_step = config.first_step + budget.max_steps - 1
    index = config.first_step
    while True:
        at_limit = index > last_step
        if at_limit:
            (turns[-1][1] if turns else head).append(Message("user", fmt.final_request()))
        interval = config.planning_interval
        if interval and not at_limit and (index - config.first_step) % interval == 0:
            t0 = time.monotonic()
            try:
                plan = yield CallModel(index, (*prompt(), Message("user", PLAN_REQUEST)), (), (), deadline, "plan")
            except ModelError as exc:
                return (yield from finish("model_error", partial, f"{type(exc).__name__}: {exc}"))
            except BudgetExceeded:
                return (yield from out_of_time(index))
            except KeyboardInterrupt:
                return (yield from finish("interrupted", partial, "interrupted by the user"))
            usage = usage + plan.usage
            yield PlanUpdated(index, plan.text, plan.usage, time.monotonic() - t0)
            (turns[-1][1] if turns else head).append(Message("user", f"Your plan:\n{plan.text.strip()}"))
        messages = prompt()
        if budget.max_tokens is not None or budget.max_cost is not None:
            estimate = compactor.estimate(messages) if compactor is not None else estimate_tokens(messages, sizes)
            hit = budget.check_prompt(usage, estimate, extra, extra_cost)
            if hit:
                return (yield from out_of_budget(index, hit))
        t0 = time.monotonic()
        try:
            reply = yield CallModel(index, messages, fmt.stop, fmt.tool_specs, deadline, temperature=temperature)
        except ModelError as exc:
            return (yield from finish("model_error", partial, f"{type(exc).__name__}: {exc}"))
        except BudgetExceeded:
            return (yield from out_of_time(index))
        except KeyboardInterrupt:
            return (yield from finish("interrupted", partial, "interrupted by the user"))
        model_seconds = time.monotonic() - t0
        usage = usage + reply.usage
        temperature = None
        yield ModelReplied(index, reply.text, reply.usage, model_seconds, reply.tool_calls, reply.finish_reason)

        action = fmt.read(reply)
        if isinstance(action, NoAction) and action.stated_answer and _output_just_seen(steps):
            action = Action(action.thought, action.stated_answer, note="final answer stated in words")
        turn = [fmt.assistant_message(reply, action)]
        turns.append((index, turn))
        if isinstance(action, NoAction):
            yield ActionParsed(index, action.thought, None, "no_code")
            hint = _no_code_hint(action, steps)
            step = Step(index, action.thought, None, hint, reply.usage, model_seconds,
                        error="no_code", reply=reply.text)
            review = _with_task(review_reply(config.techniques, [*steps, step]), task)
            if review.observation or review.note:
                step = replace(step, observation="\n".join(filter(None, (review.observation or hint, review.note))))
            temperature = review.temperature
            steps.append(step)
            yield StepFinished(step)
            partial = reply.text.strip() or partial
            if at_limit:
                return (yield from finish("max_steps", reply.text.strip() or None,
                                          f"no final answer after {budget.max_steps} steps"))
            turn.extend(fmt.observation_messages(None, _with_cut_note(step.observation, reply)))
        else:
            yield ActionParsed(index, action.thought, action.code, action.note)
            try:
                spent_cost = budget.cost_of(usage) + extra_cost if budget.cost_of is not None else None
                execution: Execution = yield RunAction(index, action, deadline, usage + extra, spent_cost, at_limit)
            except KeyboardInterrupt:
                return (yield from finish("interrupted", partial, "interrupted by the user"))
            except BudgetExceeded:
                return (yield from out_of_time(index))
            extra, extra_cost = extra + execution.extra_usage, extra_cost + execution.extra_cost
            observation = fmt.format_observation(execution)
            review = _with_task(review_step(config.techniques, steps, action.code, execution), task)
            temperature = review.temperature
            accepted = False
            answer = execution.final_answer
            if execution.is_final:
                answer, rejection = _accept(answer, config)
                rejection = rejection or review.reject_answer
                if rejection is None:
                    accepted = True
                    observation = _final_observation(observation, execution)
                else:
                    observation = (f"{observation}\nYour final answer was rejected: {rejection}\n"
                                   "Fix the problem and call final_answer again.").lstrip()
            if review.observation and not execution.is_final:
                observation = review.observation
            if review.note and not accepted:
                observation = f"{observation}\n{review.note}"
            observation = _with_cut_note(observation, reply)
            error = _error_kind(execution)
            yield Observed(index, observation, execution.duration_s, error, execution)
            if execution.images:
                shown.extend(execution.images)
                yield ImagesShown(index, tuple(i.describe() for i in execution.images), execution.images)
            step = Step(index, action.thought, action.code, observation, reply.usage, model_seconds,
                        execution.duration_s, execution.tool_calls, accepted, error, reply.text)
            steps.append(step)
            yield StepFinished(step)
            observed = fmt.observation_messages(action, observation)
            if execution.images and observed:  # the images go with the observation (notes for text-only models)
                observed[-1] = replace(observed[-1], images=observed[-1].images + execution.images)
            turn.extend(observed)  # also for the transcript of a last step
            if accepted:
                return (yield from finish("success", answer))
            last_value = execution.result if execution.result is not None else (execution.stdout.strip() or None)
            partial = last_value if last_value is not None else partial
            if at_limit:
                return (yield from finish("max_steps", last_value, f"no final answer after {budget.max_steps} steps"))
        hit = budget.check(usage, time.monotonic() - started, extra, extra_cost)
        if hit:
            return (yield from out_of_budget(index, hit))
        index += 1


PLAN_REQUEST = ("Before the next step, write a short plan in plain text, no code: the facts you know so far, "
                "then the steps that remain.")
"""The planning call's request (`planning_interval`); the plan then stays in the conversation."""


CUT_NOTE = ("Your reply was cut off: it reached the length limit for one reply. "
            "Write shorter code, and do long work over several steps.")
"""Told to the model after a reply that hit the reply-length cap (finish_reason "length"): without it
a small model sees only the syntax error of its half-written code and writes the same long reply again."""


def _no_code_hint(action: NoAction, steps: Sequence[Step]) -> str:
    """What a reply without code is told: before any tool ran, that an answer would be a guess;
    right after output, that output, to answer from; otherwise the format's general hint."""
    if action.before_tools and not any(s.tool_calls for s in steps):
        return action.before_tools
    if action.after_output and _output_just_seen(steps):
        return action.after_output.replace(OUTPUT_SLOT, quote_output(steps[-1]), 1)
    return action.message


def _output_just_seen(steps: Sequence[Step]) -> bool:
    """The step before showed output and no error: a reply in words now can be read off that output."""
    return bool(steps) and showed_output(steps[-1]) and steps[-1].error is None


def _with_cut_note(observation: str, reply: ModelReply) -> str:
    if reply.finish_reason != "length":
        return observation
    return f"{observation}\n{CUT_NOTE}".lstrip()


def _with_task(review: Review, task: str) -> Review:
    """The review with the task quoted where its text holds `TASK_SLOT` (first place only: what
    follows may quote values from the sandbox)."""
    if TASK_SLOT not in review.note and TASK_SLOT not in (review.reject_answer or ""):
        return review
    quoted = quote_task(task)
    rejection = review.reject_answer.replace(TASK_SLOT, quoted, 1) if review.reject_answer else review.reject_answer
    return replace(review, note=review.note.replace(TASK_SLOT, quoted, 1), reject_answer=rejection)


def _accept(answer: Any, config: LoopConfig) -> tuple[Any, str | None]:
    """(the typed answer, None) when it is accepted, else (the answer, the reason for rejecting it)."""
    if config.parse_answer is not None:
        try:
            answer = config.parse_answer(answer)
        except ValueError as exc:
            return answer, f"it does not match the output type: {exc}"
        except Exception as exc:  # noqa: BLE001 - a value from the sandbox must not end the run
            return answer, f"it could not be read as the output type: {type(exc).__name__}: {exc}"[:2_000]
    return answer, _check_answer(answer, config.final_answer_checks)


def _check_answer(answer: Any, checks: Sequence[FinalAnswerCheck]) -> str | None:
    """None if every check accepts the answer, else the first reason for rejecting it."""
    for check in checks:
        name = getattr(check, "__name__", type(check).__name__)
        try:
            verdict = check(answer)
        except Exception as exc:  # noqa: BLE001 - a failing check is a rejection with its reason
            return f"{name} raised {type(exc).__name__}: {exc}"
        if verdict is False:
            return f"check {name} failed"
        if isinstance(verdict, str):
            return verdict
    return None


def _final_observation(observation: str, execution: Execution) -> str:
    """The answer, after what the final step printed (the user sees it there, not only the log)."""
    try:
        shown = repr(execution.final_answer)
    except Exception as exc:  # noqa: BLE001 - a value from the sandbox: its repr may fail
        shown = f"<{type(execution.final_answer).__name__} whose repr() raised {type(exc).__name__}>"
    answer = "Final answer: " + truncate(shown, _ANSWER_CHARS)
    if (execution.stdout + execution.stderr).strip():
        return f"{observation}\n{answer}"
    return answer


_ANSWER_CHARS = 8_000
"""What the final observation shows of the answer's repr (the answer itself is whole in the result)."""


def _error_kind(execution: Execution) -> str | None:
    if execution.timed_out:
        return "timeout"
    if execution.state_lost:
        return "kernel_lost"
    return execution.error.type if execution.error else None
