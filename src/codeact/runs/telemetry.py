"""OpenTelemetry spans for runs, with OpenInference attributes (so Phoenix, Langfuse and Arize
show them as agent traces). Off unless you pass `telemetry=` to an agent; needs the extra:
`pip install 'codeact[telemetry]'`.

The span tree of one run::

    run (AGENT)
    └── step N (CHAIN)
        ├── model (LLM)        messages in, reply out, token counts
        └── python (TOOL)      the code, its observation
            └── <tool> (TOOL)  each host tool the code called, with arguments and result

Spans are built from the same events the run log gets, with explicit parents, so many runs in
one process (or one event loop) never mix their trees.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from codeact._optional import require
from codeact._version import __version__
from codeact.models.base import Message
from codeact.runs.codec import encode_value
from codeact.runs.events import (
    BudgetHit,
    Event,
    ModelReplied,
    Observed,
    RunFinished,
    RunResumed,
    RunStarted,
    StepFinished,
)
from codeact.sandbox.base import ToolCallRecord

__all__ = ["RunTracer", "Telemetry"]

_MAX_ATTR = 32_000  # characters per attribute; collectors reject or truncate huge values


class Telemetry:
    """Where a run's spans go.

    Args:
        tracer_provider: an OpenTelemetry TracerProvider; the global one when None.
        capture_content: put prompts, replies, code, observations and tool values on spans
            (they may hold personal data; the run log's secret redaction does not apply here).
    """

    def __init__(self, tracer_provider: Any = None, *, capture_content: bool = True) -> None:
        trace = require("opentelemetry.trace", extra="telemetry", feature="Telemetry")
        semconv = require("openinference.semconv.trace", extra="telemetry", feature="Telemetry")
        provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
        self.tracer = provider.get_tracer("codeact", __version__)
        self.capture_content = capture_content
        self._trace = trace
        self._attrs = semconv.SpanAttributes
        self._messages = semconv.MessageAttributes

    def observer(self, run_id: str | None = None) -> RunTracer:
        return RunTracer(self, run_id)


class RunTracer:
    """Turns one run's effects and events into spans (a `RunObserver`)."""

    def __init__(self, telemetry: Telemetry, run_id: str | None) -> None:
        self.t = telemetry
        self.run_id = run_id
        self._run: Any = None
        self._step: Any = None
        self._step_index: int | None = None
        self._model: Any = None
        self._code: Any = None
        self._model_name = ""

    # -- RunObserver -----------------------------------------------------------------------------
    def on_model_request(self, step: int, messages: Sequence[Message], stop: Sequence[str]) -> None:
        self._open_step(step)
        a, m = self.t._attrs, self.t._messages
        attrs: dict[str, Any] = {
            a.OPENINFERENCE_SPAN_KIND: "LLM",
            a.LLM_MODEL_NAME: self._model_name,
            a.LLM_INVOCATION_PARAMETERS: json.dumps({"stop": list(stop)}),
        }
        if self.t.capture_content:
            for i, message in enumerate(messages):
                prefix = f"{a.LLM_INPUT_MESSAGES}.{i}."
                attrs[prefix + m.MESSAGE_ROLE] = message.role
                attrs[prefix + m.MESSAGE_CONTENT] = _clip(message.content)
        self._model = self._start("model", self._step, attrs)

    def on_action(self, step: int, code: str | None) -> None:
        self._open_step(step)
        a = self.t._attrs
        attrs = {a.OPENINFERENCE_SPAN_KIND: "TOOL", a.TOOL_NAME: "python",
                 a.TOOL_DESCRIPTION: "run the model's code in the sandboxed kernel"}
        if self.t.capture_content and code is not None:
            attrs.update({a.INPUT_VALUE: _clip(code), a.INPUT_MIME_TYPE: "text/x-python"})
        self._code = self._start("python", self._step, attrs)

    def on_tool_call(self, step: int, record: ToolCallRecord) -> None:
        self._open_step(step)
        a = self.t._attrs
        end = time.time_ns()
        start = end - int(record.duration_s * 1e9)
        attrs: dict[str, Any] = {a.OPENINFERENCE_SPAN_KIND: "TOOL", a.TOOL_NAME: record.name}
        if self.t.capture_content:
            arguments = _json(record.arguments)
            attrs.update({a.TOOL_PARAMETERS: arguments, a.INPUT_VALUE: arguments,
                          a.INPUT_MIME_TYPE: "application/json"})
            if record.error is None:
                attrs.update({a.OUTPUT_VALUE: _json(record.result), a.OUTPUT_MIME_TYPE: "application/json"})
        span = self._start(record.name, self._code or self._step, attrs, start_time=start)
        if record.error is not None:
            self._fail(span, record.error)
        span.end(end_time=end)

    def on_event(self, event: Event) -> None:
        a, m = self.t._attrs, self.t._messages
        if isinstance(event, (RunStarted, RunResumed)):
            self._start_run(event)
        elif isinstance(event, ModelReplied) and self._model is not None:
            span, self._model = self._model, None
            span.set_attributes({
                a.LLM_TOKEN_COUNT_PROMPT: event.usage.prompt_tokens,
                a.LLM_TOKEN_COUNT_COMPLETION: event.usage.completion_tokens,
                a.LLM_TOKEN_COUNT_TOTAL: event.usage.total_tokens,
            })
            if self.t.capture_content:
                prefix = f"{a.LLM_OUTPUT_MESSAGES}.0."
                span.set_attributes({prefix + m.MESSAGE_ROLE: "assistant",
                                     prefix + m.MESSAGE_CONTENT: _clip(event.text),
                                     a.OUTPUT_VALUE: _clip(event.text)})
            span.end()
        elif isinstance(event, Observed) and self._code is not None:
            span, self._code = self._code, None
            if self.t.capture_content:
                span.set_attributes({a.OUTPUT_VALUE: _clip(event.observation), a.OUTPUT_MIME_TYPE: "text/plain"})
            if event.error:
                self._fail(span, event.error)
            span.end()
        elif isinstance(event, StepFinished) and self._step is not None:
            step = event.step
            self._step.set_attributes({
                a.LLM_TOKEN_COUNT_PROMPT: step.usage.prompt_tokens,
                a.LLM_TOKEN_COUNT_COMPLETION: step.usage.completion_tokens,
                a.LLM_TOKEN_COUNT_TOTAL: step.usage.total_tokens,
            })
            if self.t.capture_content:
                self._step.set_attribute(a.OUTPUT_VALUE, _clip(step.observation))
            self._close_step()
        elif isinstance(event, BudgetHit) and self._run is not None:
            self._run.add_event("budget_hit", {"budget": event.budget, "limit": event.limit, "used": event.used})
        elif isinstance(event, RunFinished):
            self._finish_run(event)

    def close(self, error: BaseException | None) -> None:
        """End whatever is still open (the driver raised, or the caller stopped early)."""
        for span in (self._model, self._code, self._step, self._run):
            if span is not None:
                if error is not None:
                    self._fail(span, f"{type(error).__name__}: {error}")
                span.end()
        self._model = self._code = self._step = self._run = None

    # -- spans -------------------------------------------------------------------------------------
    def _start_run(self, event: RunStarted | RunResumed) -> None:
        if self._run is not None:
            return
        a = self.t._attrs
        attrs: dict[str, Any] = {a.OPENINFERENCE_SPAN_KIND: "AGENT"}
        if isinstance(event, RunStarted):
            self._model_name = event.model
            attrs.update({a.AGENT_NAME: event.agent, a.LLM_MODEL_NAME: event.model,
                          a.METADATA: json.dumps({"run_id": event.run_id, "tools": list(event.tools),
                                                  "max_steps": event.max_steps})})
            if self.t.capture_content:
                attrs.update({a.INPUT_VALUE: _clip(event.task), a.INPUT_MIME_TYPE: "text/plain"})
        else:
            attrs[a.METADATA] = json.dumps({"run_id": event.run_id, "resumed_from_step": event.from_step})
        if self.run_id is not None:
            attrs[a.SESSION_ID] = self.run_id
        self._run = self._start("run", None, attrs)

    def _finish_run(self, event: RunFinished) -> None:
        self._close_step()
        if self._run is None:
            return
        a = self.t._attrs
        span, self._run = self._run, None
        span.set_attributes({
            "codeact.status": event.status,
            "codeact.steps": event.steps,
            a.LLM_TOKEN_COUNT_PROMPT: event.usage.prompt_tokens,
            a.LLM_TOKEN_COUNT_COMPLETION: event.usage.completion_tokens,
            a.LLM_TOKEN_COUNT_TOTAL: event.usage.total_tokens,
        })
        if self.t.capture_content and event.output is not None:
            span.set_attributes({a.OUTPUT_VALUE: _json(event.output), a.OUTPUT_MIME_TYPE: "application/json"})
        if event.status != "success":
            self._fail(span, f"{event.status}: {event.error or ''}".strip(": "))
        span.end()

    def _open_step(self, index: int) -> None:
        if self._step is not None and self._step_index == index:
            return
        self._close_step()
        a = self.t._attrs
        self._step = self._start(f"step {index}", self._run, {a.OPENINFERENCE_SPAN_KIND: "CHAIN",
                                                              "codeact.step": index})
        self._step_index = index

    def _close_step(self) -> None:
        for name in ("_model", "_code"):
            span = getattr(self, name)
            if span is not None:
                span.end()
                setattr(self, name, None)
        if self._step is not None:
            self._step.end()
            self._step = None
            self._step_index = None

    def _start(self, name: str, parent: Any, attrs: dict[str, Any], start_time: int | None = None) -> Any:
        # A run with no parent nests under the caller's current span, if any (e.g. a web request).
        context = self.t._trace.set_span_in_context(parent) if parent is not None else None
        return self.t.tracer.start_span(name, context=context, attributes=attrs, start_time=start_time)

    def _fail(self, span: Any, description: str) -> None:
        status = self.t._trace.Status(self.t._trace.StatusCode.ERROR, description[:500])
        span.set_status(status)


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_ATTR else text[: _MAX_ATTR - 20] + "… [truncated]"


def _json(value: Any) -> str:
    return _clip(json.dumps(encode_value(value), ensure_ascii=False, default=repr))
