"""Running a task through smolagents' own CodeAgent / ToolCallingAgent, for the side-by-side.

smolagents is an optional extra (`bench-peers`) and is imported only here, only when a
smolagents config runs. Its agents keep their default prompts, executor and parsing; we give them
the same tools (wrapped as smolagents `Tool`s that call ours), the same OpenAI-compatible server,
temperature 0, the same cap on reply tokens and the same step limit, and read answer, steps and
tokens from its memory.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Mapping
from typing import Any

from codeact._optional import require
from codeact.bench.model import BenchModel
from codeact.bench.outcome import Outcome
from codeact.bench.tasks import Task
from codeact.tools.tool import Tool

__all__ = ["run_smolagents", "to_smolagents_tool"]

_JSON_TO_SMOL = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean",
                 "array": "array", "object": "object", "null": "null"}
_PY_TO_SMOL = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array",
               dict: "object", tuple: "array", type(None): "null"}


def _smolagents() -> Any:
    return require("smolagents", extra="bench-peers", feature="The smolagents-code and smolagents-json configs")


def to_smolagents_tool(tool: Tool) -> Any:
    """A smolagents Tool with our tool's name, description and inputs, whose forward calls ours."""
    smolagents = _smolagents()
    schema = tool.json_schema()
    required = set(schema.get("required", ()))
    inputs: dict[str, dict[str, Any]] = {}
    for name, prop in schema.get("properties", {}).items():
        entry: dict[str, Any] = {
            "type": _JSON_TO_SMOL.get(prop.get("type", ""), "any"),
            "description": prop.get("description") or name,
        }
        if name not in required:
            entry["nullable"] = True
        inputs[name] = entry

    def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        return tool(*args, **kwargs)

    attributes = {
        "name": tool.name,
        "description": tool.summary,
        "inputs": inputs,
        "output_type": _output_type(tool),
        "skip_forward_signature_validation": True,
        "forward": forward,
    }
    cls = type(f"Smol_{tool.name}", (smolagents.Tool,), attributes)
    return cls()


def _output_type(tool: Tool) -> str:
    annotation = tool.signature.return_annotation
    if annotation is inspect.Signature.empty:
        return "any"
    origin = typing.get_origin(annotation) or annotation
    return _PY_TO_SMOL.get(origin, "any")


def run_smolagents(kind: str, task: Task, tools: Mapping[str, Tool], model: BenchModel, max_steps: int) -> Outcome:
    """Run smolagents' CodeAgent ("code") or ToolCallingAgent ("json") on one task."""
    smolagents = _smolagents()
    url, name, key = model.openai_endpoint()
    # Plain-string message contents: llama.cpp's server rejects OpenAI's list-of-parts form.
    server = smolagents.OpenAIServerModel(
        model_id=name, api_base=url, api_key=key or "not-needed", temperature=model.temperature,
        max_tokens=model.max_tokens, flatten_messages_as_text=True,
    )
    agent_class = smolagents.CodeAgent if kind == "code" else smolagents.ToolCallingAgent
    agent = agent_class(
        tools=[to_smolagents_tool(t) for t in tools.values()],
        model=server,
        max_steps=max_steps,
        verbosity_level=smolagents.LogLevel.OFF,
    )
    try:
        result = agent.run(task.question, return_full_result=True)
    except Exception as exc:  # noqa: BLE001 - e.g. the context overflowed: keep the steps it took
        generation = isinstance(exc, smolagents.utils.AgentGenerationError)
        status = "model_error" if generation else f"crash:{type(exc).__name__}"
        return _outcome(smolagents, agent, None, False, status, f"{type(exc).__name__}: {exc}")
    status = "success" if result.state == "success" else "max_steps"
    error = None if status == "success" else f"smolagents: {result.state}"
    return _outcome(smolagents, agent, result.output, result.output is not None, status, error)


def _outcome(smolagents: Any, agent: Any, output: Any, answered: bool, status: str, error: str | None) -> Outcome:
    """Steps, tokens and step errors read from the agent's memory."""
    steps = [s for s in agent.memory.steps if isinstance(s, smolagents.ActionStep)]
    prompt = completion = 0
    for step in agent.memory.steps:
        usage = getattr(step, "token_usage", None)
        if usage is not None:
            prompt += usage.input_tokens
            completion += usage.output_tokens
    return Outcome(
        output=output,
        answered=answered,
        status=status,
        steps=len(steps),
        prompt_tokens=prompt,
        completion_tokens=completion,
        error=error,
        step_errors=tuple(type(s.error).__name__ for s in steps if s.error is not None),
    )
