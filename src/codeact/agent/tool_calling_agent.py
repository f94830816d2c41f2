"""The tool-calling agent: the model acts by calling tools with JSON arguments instead of writing code.

It exists to be compared with `CodeAgent` on equal terms, so it shares everything but the action
format: the same loop, events, budgets, final-answer checks and host tools. Actions are native
tool calls when the model API returns them, else JSON read from the reply text (see
`_json_actions`). The calls of one step run concurrently on the host, in a thread pool.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from codeact.agent._json_actions import ParsedCalls, parse_tool_calls
from codeact.agent.agent import Agent
from codeact.agent.loop import Action, NoAction
from codeact.agent.observation import truncate
from codeact.agent.output_type import compact
from codeact.agent.prompt import load_template, render_tools, with_notes
from codeact.errors import ConfigError
from codeact.models.base import Message, Model, ModelReply, ToolCall, ToolSpec
from codeact.models.images import find_images
from codeact.sandbox.base import ExecError, Execution, ToolCallRecord
from codeact.sandbox.guest.display import MAX_IMAGES_PER_STEP
from codeact.tools.dispatch import ToolDispatcher
from codeact.tools.tool import Tool

__all__ = ["FINAL_ANSWER_SPEC", "HELD_ANSWER", "JsonFormat", "ToolCallingAgent", "ToolExecution"]

ToolMode = Literal["native", "text"]

FINAL_ANSWER_SPEC = ToolSpec(
    "final_answer",
    "Finish the task and return this answer to the user.",
    {
        "type": "object",
        "properties": {"answer": {"description": "The final answer to the task."}},
        "required": ["answer"],
    },
)
_POSITIONAL = "__args__"  # set by the JSON reader when arguments were a list or a bare value
_RAW = "_raw"  # set by the OpenAI backend when native arguments were not a JSON object


@dataclass(frozen=True)
class ToolExecution(Execution):
    """An Execution that also keeps each call's observation: (call id, tool name, text), in call order."""

    outputs: tuple[tuple[str, str, str], ...] = ()


class JsonFormat:
    """Prompts and reading for tool-call actions.

    In "native" mode the tool specs go to the model API and the reply's `tool_calls` are used;
    replies that carry the calls as text (e.g. llama.cpp's server returns Qwen's `<tool_call>`
    tags as text) are read as JSON and then treated like native calls, so the conversation stays
    in the API's canonical form. In "text" mode the prompt describes the JSON format and the
    tools, nothing is sent as specs, and results come back as an "Observation:" message.
    """

    name = "json"
    stop: tuple[str, ...] = ("\nObservation:",)

    def __init__(
        self,
        tools: Mapping[str, Tool],
        *,
        mode: ToolMode = "native",
        max_observation_chars: int = 8_000,
        template_text: str | None = None,
        notes: str = "",
        answer_schema: Mapping[str, Any] | None = None,
    ) -> None:
        if mode not in ("native", "text"):
            raise ConfigError(f"tool_mode must be 'native' or 'text', got {mode!r}")
        self.tools = tools
        self.mode = mode
        self.max_observation_chars = max_observation_chars
        self.tool_specs: tuple[ToolSpec, ...] = ()
        if mode == "native":
            self.tool_specs = (*(t.spec() for t in tools.values()), _final_answer_spec(answer_schema))
            template = template_text if template_text is not None else load_template("tool_calling_native.txt")
            self._system = with_notes(template.rstrip("\n"), notes).rstrip("\n")
        else:
            template = template_text if template_text is not None else load_template("tool_calling_agent.txt")
            self._system = with_notes(template.replace("{tools}", render_tools(tools)), notes)
        self._outputs: dict[str, str] = {}

    def system_prompt(self) -> str:
        return self._system

    def task_message(self, task: str) -> str:
        return f"Task: {task}"

    def read(self, reply: ModelReply) -> Action | NoAction:
        if reply.tool_calls:
            return Action(reply.text.strip(), payload=tuple(reply.tool_calls))
        parsed = parse_tool_calls(reply.text)
        if not isinstance(parsed, ParsedCalls):
            return NoAction(reply.text.strip(), parsed.message)
        notes = (("calls read from text",) if self.mode == "native" else ()) + parsed.repaired
        return Action(parsed.thought, payload=parsed.calls, note="; ".join(notes))

    def assistant_message(self, reply: ModelReply, action: Action | NoAction) -> Message:
        if self.mode == "native" and isinstance(action, Action):
            content = reply.text if reply.tool_calls else action.thought
            return Message("assistant", content, tool_calls=tuple(action.payload))
        return Message("assistant", reply.text)

    def observation_messages(self, action: Action | None, observation: str) -> list[Message]:
        if self.mode == "text" or action is None:
            return [Message("user", f"Observation:\n{observation}")]
        # Every call id in the assistant message needs its own tool message.
        return [
            Message("tool", self._outputs.get(call.id, observation), tool_call_id=call.id)
            for call in action.payload
        ]

    def format_observation(self, execution: Execution) -> str:
        outputs = execution.outputs if isinstance(execution, ToolExecution) else ()
        # Kept for observation_messages, which the loop calls next with this step's action.
        self._outputs = {call_id: text for call_id, _, text in outputs}
        if not outputs:
            if execution.error is not None:
                return f"{execution.error.type}: {execution.error.message}"
            return "No tool was called."
        if len(outputs) == 1:
            return outputs[0][2]
        return "\n".join(f"{i}. {name}: {text}" for i, (_, name, text) in enumerate(outputs, 1))

    def final_request(self) -> str:
        return (
            "You have reached the step limit. Call final_answer now with your best answer from "
            "what you have found so far."
        )


class ToolCallingAgent(Agent):
    """An agent whose actions are tool calls (JSON), run on the host.

    Args:
        model: the chat model; defaults to the embedded local model.
        tools: `@tool` functions or `Tool` instances.
        tool_mode: "native" sends tool specs through the model API (and still reads JSON from
            text when the server returns calls as text); "text" describes the tools and the
            JSON format in the prompt, for APIs without tool support.
        max_parallel_tools: how many calls of one step run at the same time.
        answer_alone: take `final_answer` only from a step that calls no other tool (or from the
            last step). One sent with other calls was written before their results existed; it
            is held back, and the model is asked to answer once it has read them. Off by
            default: the embedded 1.5B sent the same list again, step after step, and solved
            no more (`codeact-json+answeralone` in the bench).
        options: `Agent`'s run options: max_cost, prices, compaction, store, telemetry.
    """

    kind = "json"
    stateful = False  # each call stands alone: resume feeds recorded results back, re-runs nothing

    def __init__(
        self,
        model: Model | None = None,
        tools: Iterable[Tool | Callable[..., Any]] = (),
        *,
        tool_mode: ToolMode = "native",
        max_parallel_tools: int = 8,
        answer_alone: bool = False,
        max_observation_chars: int = 8_000,
        max_steps: int = 10,
        max_tokens: int | None = None,
        max_seconds: float | None = None,
        final_answer_checks: Sequence[Callable[[Any], Any]] = (),
        step_callbacks: Sequence[Callable[..., None]] = (),
        event_callbacks: Sequence[Callable[..., None]] = (),
        **options: Any,
    ) -> None:
        super().__init__(
            model,
            tools,
            max_steps=max_steps,
            max_tokens=max_tokens,
            max_seconds=max_seconds,
            final_answer_checks=final_answer_checks,
            step_callbacks=step_callbacks,
            event_callbacks=event_callbacks,
            **options,  # max_cost, prices, compaction, store, telemetry: see Agent
        )
        self.max_parallel_tools = max(1, max_parallel_tools)
        self.answer_alone = answer_alone
        self._fmt = JsonFormat(
            self.tools, mode=tool_mode, max_observation_chars=max_observation_chars, template_text=self.prompt_template,
            notes=self._prompt_notes(), answer_schema=self.answer_type.schema if self.answer_type else None,
        )
        self.tool_dispatcher = ToolDispatcher(self.tools, listener=self._record_call)
        """Calls the tools; add policies with `agent.tool_dispatcher.add_policy(...)`."""
        self._pool: ThreadPoolExecutor | None = None
        self._record_lock = threading.Lock()

    def _format(self) -> JsonFormat:
        return self._fmt

    def _begin(self) -> None:
        # This run's tools: the real ones, or recorded stand-ins during resume and replay.
        self.tool_dispatcher.set_tools(self._run_tools())
        self._wire_approvals(self.tool_dispatcher)
        self._pool = ThreadPoolExecutor(self.max_parallel_tools, thread_name_prefix="codeact-tool")

    def _end(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _record_call(self, record: ToolCallRecord) -> None:
        with self._record_lock:  # calls of one step finish on several threads at once
            self._on_tool_call(record)

    def _perform(self, action: Action) -> Execution:
        started = time.monotonic()
        calls: tuple[ToolCall, ...] = tuple(action.payload or ())
        finals = [c for c in calls if c.name == "final_answer"]
        others = [c for c in calls if c.name != "final_answer"]
        if len(others) > 1 and self._pool is not None:
            outcomes = list(self._pool.map(self._invoke, others))
        else:
            outcomes = [self._invoke(c) for c in others]
        outputs = [(c.id, c.name, text) for c, (_, text, _) in zip(others, outcomes)]
        records = tuple(record for record, _, _ in outcomes)
        error = next((err for _, _, err in outcomes if err is not None), None)
        final: dict[str, Any] = {}
        if finals and others and self.answer_alone and not self._last_step():
            outputs.extend((call.id, call.name, HELD_ANSWER) for call in finals)
            finals = []
        for call in finals:
            answer, problem = _answer_of(call.arguments)
            if problem is not None:
                error = error or ExecError("TypeError", problem, "")
                outputs.append((call.id, call.name, f"Error: {problem}"))
            else:
                final = {"is_final": True, "final_answer": answer}
                outputs.append((call.id, call.name, "Final answer received."))
        images = [image for record in records for image in find_images(record.result)]
        return ToolExecution(
            error=None if final else error,
            duration_s=time.monotonic() - started,
            tool_calls=records,
            outputs=tuple(outputs),
            images=tuple(images[:MAX_IMAGES_PER_STEP]),  # the model sees them after the tools' results
            **final,
        )

    def _last_step(self) -> bool:
        """Whether the action running now is the run's last (after the step limit's request)."""
        return self._acting is not None and self._acting[0].last

    def _invoke(self, call: ToolCall) -> tuple[ToolCallRecord, str, ExecError | None]:
        """Run one call on the host through the dispatcher: (record, observation, error)."""
        arguments = dict(call.arguments)
        if set(arguments) == {_RAW}:
            problem = f"the arguments of {call.name} are not a valid JSON object: {arguments[_RAW]!r}"
            record = ToolCallRecord(call.name, arguments, None, f"ValueError: {problem}")
            self._record_call(record)
            return record, f"Error: ValueError: {problem}", ExecError("ValueError", problem, "")
        args = arguments.pop(_POSITIONAL, [])
        outcome = self.tool_dispatcher.call(call.name, args, arguments)
        if outcome.ok:
            return outcome.record, truncate(_render(outcome.value), self._fmt.max_observation_chars), None
        kind, message = outcome.error_type or "Error", outcome.error_message
        tool = self.tools.get(call.name)
        if kind == "TypeError" and tool is not None and message.startswith(f"{call.name}():"):
            message += f". Its parameters are: {', '.join(tool.signature.parameters) or 'none'}."
        return outcome.record, f"Error: {kind}: {message}", ExecError(kind, message, "")


HELD_ANSWER = ("Not taken: final_answer came in the same reply as other tool calls, so it was written before "
               "their results existed. Read the results above, then call final_answer alone.")
"""The observation of a final_answer sent with other calls (`answer_alone`). The 1.5B sent
`[list_hotels(...), convert_currency(50, ...), final_answer(4.98)]` in 9 of 16 travel runs: every
later argument, the answer too, was guessed."""


def _final_answer_spec(schema: Mapping[str, Any] | None) -> ToolSpec:
    """final_answer's spec; with an output type its `answer` parameter carries the schema."""
    if schema is None:
        return FINAL_ANSWER_SPEC
    answer = {**compact(dict(schema)), "description": "The final answer to the task."}
    defs = answer.pop("$defs", None)  # "#/$defs/..." references resolve from the parameters' root
    parameters = {**FINAL_ANSWER_SPEC.parameters, "properties": {"answer": answer}}
    return ToolSpec(FINAL_ANSWER_SPEC.name, FINAL_ANSWER_SPEC.description,
                    {**parameters, "$defs": defs} if defs else parameters)


def _answer_of(arguments: Mapping[str, Any]) -> tuple[Any, str | None]:
    """The value of a final_answer call, tolerating a differently named single argument."""
    if "answer" in arguments:
        return arguments["answer"], None
    if _POSITIONAL in arguments and len(arguments) == 1 and len(arguments[_POSITIONAL]) == 1:
        return arguments[_POSITIONAL][0], None
    if set(arguments) == {_RAW}:
        return None, f"the arguments of final_answer are not a valid JSON object: {arguments[_RAW]!r}"
    values = list(arguments.values())
    if len(values) == 1:
        return values[0], None
    return None, 'final_answer takes one argument: {"answer": <your answer>}.'


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value if value else "(empty string)"
    try:
        return json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        return repr(value)
