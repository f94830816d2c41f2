"""Agent configs: the named ways `codeact bench` can attack a task, all on the same model.

Each config is a function `(task, tools, model, max_steps) -> Outcome`. They share one
`BenchModel`, so every config talks to the same server with the same temperature and the same
cap on reply tokens; the only difference between two configs is the agent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from codeact.bench.model import BenchModel
from codeact.bench.outcome import Outcome, outcome_of
from codeact.bench.tasks import Task
from codeact.bench.variants import VARIANTS
from codeact.errors import ConfigError
from codeact.models.base import Message
from codeact.tools.tool import Tool

__all__ = [
    "AGENT_CONFIGS", "NO_AGENT_PROMPT", "AgentRunner", "get_agent_config", "run_codeact_code",
    "run_codeact_code_planning", "run_codeact_team", "run_no_agent",
]

AgentRunner = Callable[[Task, Mapping[str, Tool], BenchModel, int], Outcome]


def run_codeact_code(task: Task, tools: Mapping[str, Tool], model: BenchModel, max_steps: int,
                     **options: Any) -> Outcome:
    from codeact.agent.code_agent import CodeAgent
    from codeact.sandbox import resolve_sandbox

    agent = CodeAgent(model.codeact_model(), list(tools.values()), max_steps=max_steps,
                      sandbox=lambda: resolve_sandbox(model.sandbox), store=model.store_option(), **options)
    return outcome_of(agent.run(task.question))


def run_codeact_code_planning(task: Task, tools: Mapping[str, Tool], model: BenchModel, max_steps: int) -> Outcome:
    """codeact-code with `planning_interval=3`: a plan before the first step and every 3 steps."""
    return run_codeact_code(task, tools, model, max_steps, planning_interval=3)


def run_codeact_team(task: Task, tools: Mapping[str, Tool], model: BenchModel, max_steps: int) -> Outcome:
    """A manager with no tools of its own and one member per desk of the task's tools module
    (its `TEAM`: name, description, tool names); members get `max_steps` each, and their tokens
    count in the manager's."""
    from codeact._loading import load_object
    from codeact.agent.code_agent import CodeAgent
    from codeact.sandbox import resolve_sandbox

    spec = task.tools.partition(":")[0] if task.tools else ""
    team = load_object(f"{spec}:TEAM", "a team") if spec else None  # a module the task set already vetted
    if not team:
        raise ConfigError(f"codeact-team needs a task whose tools module defines TEAM; {task.id!r} has none")
    members = [CodeAgent(model.codeact_model(), [tools[n] for n in names], name=name, description=description,
                         max_steps=max_steps, sandbox=lambda: resolve_sandbox(model.sandbox),
                         store=model.store_option())
               for name, description, names in team]
    manager = CodeAgent(model.codeact_model(), [], agents=members, max_steps=max_steps, step_timeout=900,
                        sandbox=lambda: resolve_sandbox(model.sandbox), store=model.store_option())
    return outcome_of(manager.run(task.question))


def _tool_calling(mode: str, *, answer_alone: bool = False) -> AgentRunner:
    def run(task: Task, tools: Mapping[str, Tool], model: BenchModel, max_steps: int) -> Outcome:
        from codeact.agent.tool_calling_agent import ToolCallingAgent

        agent = ToolCallingAgent(model.codeact_model(), list(tools.values()), max_steps=max_steps,
                                 tool_mode=mode, answer_alone=answer_alone,  # type: ignore[arg-type]
                                 store=model.store_option())
        return outcome_of(agent.run(task.question))

    run.__name__ = f"run_codeact_json_{mode}" + ("_answer_alone" if answer_alone else "")
    return run


NO_AGENT_PROMPT = (
    "Answer the question. You may reason briefly first; end your reply with a last line of the "
    "form 'Answer: <answer>'."
)


def run_no_agent(task: Task, tools: Mapping[str, Tool], model: BenchModel, max_steps: int) -> Outcome:
    """The model answers directly in one call, with no tools: the floor every agent should beat."""
    from codeact.errors import ModelError

    try:
        reply = model.codeact_model().complete([Message("system", NO_AGENT_PROMPT), Message("user", task.question)])
    except ModelError as exc:
        return Outcome(None, False, "model_error", 1, 0, 0, f"{type(exc).__name__}: {exc}")
    text = reply.text.strip()
    _, sep, tail = text.rpartition("Answer:")
    answer = tail.strip() if sep else text
    return Outcome(answer, True, "success", 1, reply.usage.prompt_tokens, reply.usage.completion_tokens)


def _smolagents(kind: str) -> AgentRunner:
    def run(task: Task, tools: Mapping[str, Tool], model: BenchModel, max_steps: int) -> Outcome:
        from codeact.bench._smolagents import run_smolagents

        return run_smolagents(kind, task, tools, model, max_steps)

    run.__name__ = f"run_smolagents_{kind}"
    return run


AGENT_CONFIGS: dict[str, AgentRunner] = {
    "codeact-code": run_codeact_code,
    "codeact-code-plan": run_codeact_code_planning,
    "codeact-team": run_codeact_team,
    "codeact-json": _tool_calling("text"),
    "codeact-json-native": _tool_calling("native"),
    "codeact-json+answeralone": _tool_calling("text", answer_alone=True),
    "no-agent": run_no_agent,
    "smolagents-code": _smolagents("code"),
    "smolagents-json": _smolagents("json"),
    **VARIANTS,  # codeact-code with one technique on (bench.variants)
}
"""`codeact-json` writes JSON in text: llama.cpp's server renders tools into the prompt but returns
the calls as text, and Qwen-1.5B followed our JSON prompt better than its own tool template.
`codeact-json-native` sends tool specs through the API for servers that return `tool_calls`.
`codeact-json+answeralone` holds back a final_answer sent together with other calls
(`ToolCallingAgent(answer_alone=True)`)."""


def get_agent_config(name: str) -> AgentRunner:
    try:
        return AGENT_CONFIGS[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, AGENT_CONFIGS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown agent config {name!r}.{hint} Known: {', '.join(AGENT_CONFIGS)}") from None
