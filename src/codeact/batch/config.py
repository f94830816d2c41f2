"""What a batch runs: an agent configuration that can be shipped to another process or machine.

A worker gets this plain, picklable value and builds its own agent (and so its own sandboxes)
from it; live objects (a model client, a sandbox) never cross a process boundary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codeact.errors import ConfigError
from codeact.models.base import Message, Model
from codeact.models.scripted import ScriptedModel

__all__ = ["AgentConfig", "StepScript"]


@dataclass(frozen=True)
class AgentConfig:
    """How every task of a batch is run.

    Args:
        model: a model spec ("openai-compat:URL#MODEL", "local", ...), or "scripted" for the
            zero-latency `replies` (tests, framework-overhead figures).
        replies: for "scripted": the reply of step 1, 2, ... (the last one repeats); the text
            `{question}` in a reply becomes the task's question as a Python string literal.
        factory: "module:function" called as `function(store=PATH)` that returns an Agent; when
            given, `model` and the caps below are the factory's business.
        max_steps, max_seconds, max_tokens, max_cost: the per-task caps (the agent's budget).
        sandbox: "default", "local" or "process".
        model_options: keyword options for the model.
    """

    model: str = "local"
    replies: tuple[str, ...] = ()
    factory: str | None = None
    max_steps: int = 10
    max_seconds: float | None = None
    max_tokens: int | None = None
    max_cost: float | None = None
    sandbox: str = "default"
    model_options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.max_steps < 1:
            raise ConfigError(f"max_steps must be at least 1, got {self.max_steps}")
        if self.model == "scripted" and not self.replies and self.factory is None:
            raise ConfigError("a scripted batch needs replies")

    @property
    def endpoint(self) -> str:
        """The name the shared rate limit is kept under: one bucket per model endpoint."""
        return self.factory or self.model

    def build_model(self, question: str) -> Model:
        if self.model == "scripted":
            return StepScript(self.replies, question, limit=self.max_steps)
        from codeact.models.registry import resolve_model

        return resolve_model(self.model, **dict(self.model_options))

    def build_agent(self, question: str, tools: Sequence[Any], store: Path) -> Any:
        """A fresh agent for one task, logging to `store`."""
        if self.factory is not None:
            from codeact._loading import load_object

            return load_object(self.factory, "agent factory")(store=store)
        from codeact.agent.code_agent import CodeAgent
        from codeact.sandbox import resolve_sandbox

        sandbox = self.sandbox
        return CodeAgent(self.build_model(question), list(tools), max_steps=self.max_steps,
                         max_seconds=self.max_seconds, max_tokens=self.max_tokens, max_cost=self.max_cost,
                         sandbox=lambda: resolve_sandbox(sandbox), store=store)


class StepScript(ScriptedModel):
    """Scripted replies chosen by the step the conversation is at, not by calls made.

    So a resumed run (whose earlier replies come from its record) gets the reply of the step it
    resumes at, the way a real model would.
    """

    def __init__(self, replies: Sequence[str], question: str, *, limit: int) -> None:
        self._texts = [r.replace("{question}", repr(question)) for r in replies]
        super().__init__([self._pick] * (limit + 1), name="scripted")

    def _pick(self, messages: Sequence[Message]) -> str:
        step = sum(1 for m in messages if m.role == "assistant")
        return self._texts[min(step, len(self._texts) - 1)]
