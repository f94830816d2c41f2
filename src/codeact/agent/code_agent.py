"""The code agent: the model acts by writing Python that runs in a persistent sandboxed kernel."""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from codeact.agent.agent import Agent
from codeact.agent.loop import Action, Budget, LoopConfig, NoAction
from codeact.agent.observation import format_observation
from codeact.agent.own_imports import guard_own_imports
from codeact.agent.parse import CodeAction, idle_code_message, parse_code, stated_answer, strip_redefinitions
from codeact.agent.prompt import load_template, render_imports, render_tools, with_notes
from codeact.agent.replay import NoModel, ReplayReport, recorded_tools
from codeact.agent.techniques.base import StepReview
from codeact.agent.techniques.prompts import render_tool_lines
from codeact.agent.workspace import describe_workspace
from codeact.errors import ConfigError
from codeact.models.base import Message, Model, ModelReply, ToolSpec
from codeact.runs.recording import Recording
from codeact.runs.store import RunStore
from codeact.sandbox.base import ExecError, Execution, Sandbox
from codeact.tools.tool import Tool

__all__ = ["BLOCK_END", "CodeAgent", "CodeFormat", "closed_reply", "replay_run"]

SandboxFactory = Callable[[], Sandbox]


#: Generation stops at the line that closes the first code block: one action per reply. Small
#: models otherwise go on after their block, restating the system prompt (its example and every
#: tool's `def`) until the reply-length cap; the 1.5B spent ~500 of its 512 tokens a step so.
BLOCK_END = "\n```\n"
_FENCE_LINE = re.compile(r"^[ \t]*```", re.MULTILINE)


class CodeFormat:
    """Prompts ask for a ```python block; replies are parsed into code actions."""

    name = "code"
    tool_specs: tuple[ToolSpec, ...] = ()

    def __init__(
        self,
        tools: Mapping[str, Tool],
        *,
        authorized_imports: Collection[str] | None = None,
        max_observation_chars: int = 8_000,
        template: str = "code_agent.txt",
        template_text: str | None = None,
        notes: str = "",
        stop_after_block: bool = True,
    ) -> None:
        self.tools = tools
        self.stop: tuple[str, ...] = ("\nObservation:", "<end_code>") + ((BLOCK_END,) if stop_after_block else ())
        self.authorized_imports = authorized_imports
        self.max_observation_chars = max_observation_chars
        self.workspace_note = ""
        """Where the code runs and the files there (see `agent.workspace`); set per run."""
        self._system = with_notes(
            (template_text if template_text is not None else load_template(template))
            .replace("{tools}", render_tools(tools))
            .replace("{tool_lines}", render_tool_lines(tools))
            .replace("{imports}", render_imports(authorized_imports)),
            notes,
        )

    def system_prompt(self) -> str:
        return self._system

    def task_message(self, task: str) -> str:
        return f"Task: {task}\n\n{self.workspace_note}" if self.workspace_note else f"Task: {task}"

    def read(self, reply: ModelReply) -> Action | NoAction:
        parsed = parse_code(closed_reply(reply), tool_names=self.tools)
        if not isinstance(parsed, CodeAction):
            before_tools = parsed.before_tools if self.tools else None  # a run with no functions has none to call
            return NoAction(reply.text.strip(), parsed.message, stated_answer(reply.text), before_tools,
                            parsed.after_output)
        own = {"final_answer", *self.tools}
        code, removed = strip_redefinitions(parsed.code, own)
        idle = idle_code_message(code, removed)
        if idle is not None:
            return NoAction(reply.text.strip(), idle)
        code, guarded = guard_own_imports(code, own)
        notes = list(parsed.repaired) + [f"removed a redefinition of {name}" for name in removed]
        notes += [f"guarded an import of {name}" for name in guarded]
        return Action(parsed.thought, code, note="; ".join(notes))

    def assistant_message(self, reply: ModelReply, action: Action | NoAction) -> Message:
        return Message("assistant", closed_reply(reply))

    def observation_messages(self, action: Action | None, observation: str) -> list[Message]:
        return [Message("user", f"Observation:\n{observation}")]

    def format_observation(self, execution: Execution) -> str:
        return format_observation(execution, limit=self.max_observation_chars)

    def final_request(self) -> str:
        return (
            "You have reached the step limit. Reply now with one code block that calls "
            "final_answer(...) with your best answer from what you have found so far."
        )

    def check_imports(self, code: str) -> ExecError | None:
        """Imports outside `authorized_imports`, found before running (guidance; the sandbox is the boundary)."""
        if self.authorized_imports is None:
            return None
        try:
            tree = ast.parse(code)
        except SyntaxError:
            return None
        allowed = set(self.authorized_imports)
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if not any(name == a or name.startswith(a + ".") for a in allowed):
                    listed = ", ".join(sorted(allowed)) or "none"
                    message = f"import of '{name}' is not allowed. Allowed modules: {listed}."
                    return ExecError("ImportError", message, f"ImportError: {message}")
        return None


def closed_reply(reply: ModelReply) -> str:
    """The reply with the block fence that `BLOCK_END` kept out of it put back.

    The history then shows the model well-formed replies to imitate. A reply cut at the length cap
    keeps its open fence: that cut is real, and the loop tells the model so.
    """
    text = reply.text
    if reply.finish_reason != "length" and len(_FENCE_LINE.findall(text)) % 2 == 1:
        return text.rstrip("\n") + "\n```"
    return text


class CodeAgent(Agent):
    """An agent whose actions are Python code run in a persistent kernel.

    A sandbox instance you pass stays yours: the agent starts it but never closes it.

    Args:
        model: the chat model; defaults to the embedded local model.
        tools: `@tool` functions or `Tool` instances; they run on the host.
        sandbox: a Sandbox instance (kept across runs, so its state persists) or a factory
            called for each run; defaults to the default sandbox, fresh per run.
        authorized_imports: modules the code may import; None allows any.
        step_timeout: seconds one action may run before it is interrupted.
        techniques: opt-in habits that read each action (`agent.techniques`: RepeatGuard,
            VerifyBeforeAnswer); none by default.
        stop_after_block: end each reply where its first code block closes (one action per
            reply). Turn it off only for a model that must write several blocks in one reply;
            code that itself holds a line of just ``` (in a string) is cut there.
        options: `Agent`'s run options: max_cost, prices, compaction, store, telemetry.
    """

    kind = "code"

    def __init__(
        self,
        model: Model | None = None,
        tools: Iterable[Tool | Callable[..., Any]] = (),
        *,
        sandbox: Sandbox | SandboxFactory | None = None,
        authorized_imports: Collection[str] | None = None,
        step_timeout: float = 30.0,
        max_observation_chars: int = 8_000,
        max_steps: int = 10,
        max_tokens: int | None = None,
        max_seconds: float | None = None,
        final_answer_checks: Sequence[Callable[[Any], Any]] = (),
        step_callbacks: Sequence[Callable[..., None]] = (),
        event_callbacks: Sequence[Callable[..., None]] = (),
        techniques: Sequence[StepReview] = (),
        stop_after_block: bool = True,
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
        self.techniques = tuple(techniques)
        self.authorized_imports = None if authorized_imports is None else tuple(authorized_imports)
        self.step_timeout = step_timeout
        self.max_observation_chars = max_observation_chars
        self._own_sandbox = not isinstance(sandbox, Sandbox)
        self._sandbox_factory: SandboxFactory | None = None
        self._sandbox: Sandbox | None = None
        if isinstance(sandbox, Sandbox):
            self._sandbox = sandbox
            sandbox.start(self.tools)
        else:
            self._sandbox_factory = sandbox
        self._fmt = CodeFormat(
            self.tools, authorized_imports=self.authorized_imports, max_observation_chars=max_observation_chars,
            template_text=self.prompt_template, notes=self._prompt_notes(), stop_after_block=stop_after_block,
        )

    @property
    def sandbox(self) -> Sandbox | None:
        """The kernel in use: the one you passed, or the current run's."""
        return self._sandbox

    def _format(self) -> CodeFormat:
        return self._fmt

    def _config(self, run_id: str | None = None, budget: Budget | None = None) -> LoopConfig:
        config = super()._config(run_id, budget)
        return dataclasses.replace(config, techniques=self.techniques) if self.techniques else config

    def _begin(self) -> None:
        if self._own_sandbox and self._sandbox is None:  # else: kept for a conversation
            from codeact.sandbox import default_sandbox

            factory = self._sandbox_factory or default_sandbox
            self._sandbox = factory()
        assert self._sandbox is not None
        # Also for a sandbox you passed: this run's tools and listener replace the last run's
        # (the kernel and its state stay).
        self._sandbox.start(self._run_tools(), on_tool_call=self._on_tool_call)
        self._wire_approvals(getattr(self._sandbox, "dispatcher", None))
        # The kernel enforces the import list itself (import statements, __import__, importlib);
        # `check_imports` below stays as the early, clearer message for plain import statements.
        self._sandbox.set_authorized_imports(self.authorized_imports)
        self._fmt.workspace_note = describe_workspace(self._sandbox)

    def _workspace(self) -> Path | None:
        try:
            return Path(self._sandbox.workspace) if self._sandbox is not None else None  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - a sandbox without a host-side workspace: nothing to list
            return None

    def _end(self) -> None:
        if not self._keep_state:
            self._release_state()

    @property
    def owns_sandbox(self) -> bool:
        """True when the agent was given a sandbox factory: it starts its own kernel and closes it
        after a run (unless a conversation keeps it). False for a Sandbox instance the caller shares."""
        return self._own_sandbox

    def _state_lost_between_runs(self) -> bool:
        return self._own_sandbox

    def _release_state(self) -> None:
        if self._own_sandbox and self._sandbox is not None:
            sandbox, self._sandbox = self._sandbox, None
            sandbox.close()

    def _perform(self, action: Action) -> Execution:
        assert self._sandbox is not None and action.code is not None
        refused = self._fmt.check_imports(action.code)
        if refused is not None:
            return Execution(error=refused)
        return self._sandbox.execute(action.code, timeout=self._time_left(self.step_timeout))


def replay_run(run_id: str, *, store: RunStore | None = None, live_tools: Sequence[Tool] | None = None,
               sandbox: Sandbox | SandboxFactory | None = None, **agent_options: Any) -> ReplayReport:
    """Replay a recorded code-agent run from the log alone (see `agent.replay`).

    Args:
        run_id: the run (or a unique prefix of its id).
        store: the run log; the default file when None.
        live_tools: real tools to call (results compared with the recording) instead of
            serving recorded results.
        sandbox: as for CodeAgent; the default sandbox when None.
        agent_options: more CodeAgent options, e.g. `step_timeout`.
    """
    own_store = store is None
    store = store or RunStore()
    try:
        return _replay(store, run_id, live_tools, sandbox, agent_options)
    finally:
        if own_store:
            store.close()


def _replay(store: RunStore, run_id: str, live_tools: Sequence[Tool] | None,
            sandbox: Sandbox | SandboxFactory | None, agent_options: dict[str, Any]) -> ReplayReport:
    recording = Recording.load(store, run_id)
    if recording.started.agent != CodeAgent.kind:
        raise ConfigError(f"run {recording.run_id} was made by a {recording.started.agent!r} agent; "
                          "replay it with that agent's `replay` method")
    meta = store.get(recording.run_id).meta
    tools = list(live_tools) if live_tools is not None else recorded_tools(meta, recording)
    agent = CodeAgent(NoModel(), tools, sandbox=sandbox, store=store, **agent_options)
    try:
        return agent.replay(recording.run_id, live_tools=live_tools is not None)
    finally:
        agent.close()
