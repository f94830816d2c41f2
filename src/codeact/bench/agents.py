"""Agent configs: the named ways `codeact bench` can attack a task, all on the same model.

Each config is a function `(task, tools, model, max_steps) -> Outcome`. They share one
`BenchModel`, so every config talks to the same server with the same temperature and the same
cap on reply tokens; the only difference between two configs is the agent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from codeact.bench.tasks import Task
from codeact.errors import ConfigError
from codeact.models._retry import Failure
from codeact.models.base import Message, Model
from codeact.tools.tool import Tool

__all__ = ["AGENT_CONFIGS", "DEFAULT_REPLY_TOKENS", "AgentRunner", "BenchModel", "Outcome", "get_agent_config"]

#: The reply cap of every config unless `codeact bench --max-reply-tokens` says otherwise: room
#: for a long code action, while a small model that loops stops within a minute or two on a CPU.
DEFAULT_REPLY_TOKENS = 1024


@dataclass(frozen=True)
class Outcome:
    """What one agent did with one task, before checking the answer.

    `answered` is True when the agent produced a final answer (codeact: `final_answer` was
    called; smolagents: its run returned an output; no-agent: always), so a number that merely
    appeared in printed output is never scored as an answer.
    """

    output: Any
    answered: bool
    status: str
    steps: int
    prompt_tokens: int
    completion_tokens: int
    error: str | None = None
    step_errors: tuple[str, ...] = ()
    model_timeouts: int = 0
    """Model calls of this run that timed out (and were retried, or ended it)."""


@dataclass
class BenchModel:
    """The one model every config talks to.

    Args:
        spec: a codeact model spec, e.g. "openai-compat:http://127.0.0.1:8080/v1#qwen".
        label: a stable name for result files (a served model's port changes between runs).
        temperature: sampling temperature for every config.
        sandbox: the sandbox name for code configs ("default" or "process").
        options: more keyword options for codeact's model (e.g. `max_retries`).
        run_log: where codeact agents log their runs (a SQLite file, for `codeact runs` and
            replay); None logs nothing.
        max_tokens: the cap on every reply, for codeact's configs and the peers' alike.
        settle: for a server the bench started itself (`LocalServer.settle`): called before a
            timed-out call is retried, so the retry does not queue behind the abandoned reply.
    """

    spec: str
    label: str = ""
    temperature: float = 0.0
    sandbox: str = "default"
    options: dict[str, Any] = field(default_factory=dict)
    run_log: Path | None = None
    max_tokens: int = DEFAULT_REPLY_TOKENS
    settle: Callable[[], object] | None = None
    _model: Model | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _timeouts: threading.local = field(default_factory=threading.local, repr=False)

    def __post_init__(self) -> None:
        self.label = self.label or self.spec
        if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ConfigError(f"--max-reply-tokens must be at least 1, got {self.max_tokens!r}")

    def codeact_model(self) -> Model:
        """One shared codeact Model (an in-process model loads its weights once)."""
        with self._lock:
            if self._model is None:
                from codeact.models.registry import resolve_model

                options = {"temperature": self.temperature, "max_tokens": self.max_tokens, **self.options}
                if self.spec.startswith(("openai-compat:", "openai:")):
                    options.setdefault("before_retry", self._before_retry)
                self._model = resolve_model(self.spec, **options)
            return self._model

    def count_timeouts(self) -> int:
        """Timed-out calls made by this thread since the last call of this method."""
        count = getattr(self._timeouts, "count", 0)
        self._timeouts.count = 0
        return int(count)

    def _before_retry(self, failure: Failure) -> None:
        self._timeouts.count = getattr(self._timeouts, "count", 0) + 1
        if self.settle is not None:
            self.settle()

    def openai_endpoint(self) -> tuple[str, str, str | None]:
        """(base_url, model name, api key) for peers that speak the OpenAI API themselves."""
        prefix, _, rest = self.spec.partition(":")
        if prefix == "openai-compat" and "#" in rest:
            url, _, name = rest.rpartition("#")
            if urlsplit(url).scheme in ("http", "https"):
                return url, name, None
        if prefix == "openai" and rest:
            import os

            return os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1"), rest, None
        raise ConfigError(
            f"peer frameworks need an OpenAI-compatible server, but the model is {self.spec!r}; "
            "use --serve-local or --model openai-compat:URL#MODEL"
        )

    def store_option(self) -> Path | bool:
        """The `store=` for codeact agents: the run log file, or False (none)."""
        return self.run_log if self.run_log is not None else False

    def close(self) -> None:
        with self._lock:
            if self._model is not None:
                self._model.close()
                self._model = None


AgentRunner = Callable[[Task, Mapping[str, Tool], BenchModel, int], Outcome]


def _codeact_outcome(result: Any) -> Outcome:
    return Outcome(
        output=result.output,
        answered=result.status == "success",
        status=result.status,
        steps=len(result.steps),
        prompt_tokens=result.usage.prompt_tokens,
        completion_tokens=result.usage.completion_tokens,
        error=result.error,
        step_errors=tuple(s.error for s in result.steps if s.error),
    )


def run_codeact_code(task: Task, tools: Mapping[str, Tool], model: BenchModel, max_steps: int) -> Outcome:
    from codeact.agent.code_agent import CodeAgent
    from codeact.sandbox import resolve_sandbox

    agent = CodeAgent(model.codeact_model(), list(tools.values()), max_steps=max_steps,
                      sandbox=lambda: resolve_sandbox(model.sandbox), store=model.store_option())
    return _codeact_outcome(agent.run(task.question))


def _tool_calling(mode: str) -> AgentRunner:
    def run(task: Task, tools: Mapping[str, Tool], model: BenchModel, max_steps: int) -> Outcome:
        from codeact.agent.tool_calling_agent import ToolCallingAgent

        agent = ToolCallingAgent(model.codeact_model(), list(tools.values()), max_steps=max_steps,
                                 tool_mode=mode, store=model.store_option())  # type: ignore[arg-type]
        return _codeact_outcome(agent.run(task.question))

    run.__name__ = f"run_codeact_json_{mode}"
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
    "codeact-json": _tool_calling("text"),
    "codeact-json-native": _tool_calling("native"),
    "no-agent": run_no_agent,
    "smolagents-code": _smolagents("code"),
    "smolagents-json": _smolagents("json"),
}
"""`codeact-json` writes JSON in text: llama.cpp's server renders tools into the prompt but returns
the calls as text, and Qwen-1.5B followed our JSON prompt better than its own tool template.
`codeact-json-native` sends tool specs through the API for servers that return `tool_calls`."""


def get_agent_config(name: str) -> AgentRunner:
    try:
        return AGENT_CONFIGS[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, AGENT_CONFIGS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown agent config {name!r}.{hint} Known: {', '.join(AGENT_CONFIGS)}") from None
