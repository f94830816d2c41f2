"""The runs a server drives: started, resumed and cancelled on request, each in its own sandbox.

Every run is an asyncio task on the server's event loop, driven by the agent's async driver (the
model is awaited, code runs in a worker thread), so many runs share one process and a run goes
on whether or not anyone watches. A run that raises, a model server that is down, a kernel that
dies: each ends that run (its log says how) and nothing else. Who owns a run, and where its
workspace is, is kept in the run's meta (`{"server": {"user", "workspace"}}`): the record, not
the server's memory, says whose a run is, so a restarted server still keeps users apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeact.errors import CodeactError, ConfigError
from codeact.runs.store import RunRecord
from codeact.sandbox.base import Sandbox
from codeact.server.config import ServerConfig
from codeact.server.record import WatchedStore

__all__ = ["Busy", "LiveRun", "NotFound", "Runs", "RunRequest"]


class NotFound(CodeactError):
    """No such run for this user (another user's run is not found either)."""


class Busy(CodeactError):
    """The server runs as many runs as it may; try again later."""


@dataclass(frozen=True)
class RunRequest:
    """What a client asks for: checked against the server's limits before anything starts."""

    task: str
    model: str
    max_steps: int = 10
    max_tokens: int | None = None
    max_seconds: float | None = None
    max_cost: float | None = None


@dataclass
class LiveRun:
    """A run this server is driving now."""

    run_id: str
    user: str
    task: asyncio.Task[None]
    agent: Any
    extras: dict[str, Any] = field(default_factory=dict)
    """What other parts keep with the run while it lives (its pending approvals)."""


class Runs:
    """Starts, tracks and stops this server's runs.

    Args:
        config: the server's models, tools, sandbox and limits.
        store: the run log every run writes (and streams read).
        agent_options: more arguments for every agent (the approver).
    """

    def __init__(self, config: ServerConfig, store: WatchedStore, *,
                 agent_options: dict[str, Any] | None = None) -> None:
        self.config = config
        self.store = store
        self.agent_options = dict(agent_options or {})
        self.live: dict[str, LiveRun] = {}
        self.workspaces = Path(config.data_dir) / "workspaces"

    # -- reading ------------------------------------------------------------------------------
    def record(self, user: str, run_id: str) -> RunRecord:
        """The run's record, if `user` owns it; NotFound otherwise (whoever else owns it)."""
        if not _plain_id(run_id):
            raise NotFound(f"no run {run_id[:40]!r}")
        try:
            record = self.store.get(run_id)
        except ConfigError:
            raise NotFound(f"no run {run_id!r}") from None
        if record.id != run_id or _owner(record) != user:
            raise NotFound(f"no run {run_id!r}")
        return record

    def workspace(self, user: str, run_id: str) -> Path:
        """The run's workspace directory on the host (made when the run started)."""
        record = self.record(user, run_id)
        key = str(record.meta.get("server", {}).get("workspace", ""))
        if not _plain_id(key):
            raise NotFound(f"run {run_id} has no workspace")
        return self.workspaces / key

    # -- starting -----------------------------------------------------------------------------
    def new_workspace(self) -> tuple[str, Path]:
        """A fresh, empty workspace for a run about to start: its key and its directory."""
        key = secrets.token_hex(8)
        path = self.workspaces / key
        path.mkdir(parents=True, mode=0o755)
        return key, path

    async def start(self, user: str, request: RunRequest, workspace: tuple[str, Path]) -> str:
        """Start a run; returns its id once the run is in the log."""
        self._check_room(user)
        agent = self._agent(user, request.model, request, workspace)
        agent.run_meta.update({"server": {"user": user, "workspace": workspace[0]}, "model_spec": request.model})
        started: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        async def drive() -> None:
            async for event in agent.astream(request.task):
                if event.kind == "run_started" and not started.done():
                    started.set_result(str(event.run_id))

        return await self._launch(user, agent, drive, started)

    async def resume(self, user: str, run_id: str, *, max_steps: int | None = None) -> str:
        """Continue a run that ended without an answer (interrupted, crashed, out of steps)."""
        record = self.record(user, run_id)
        if run_id in self.live:
            raise ConfigError(f"run {run_id} is running; cancel it first")
        if record.status == "success":
            raise ConfigError(f"run {run_id} already finished with an answer")
        spec = str(record.meta.get("model_spec") or "")
        if spec not in self.config.models:
            raise ConfigError(f"run {run_id} used the model {spec!r}, which this server does not offer now")
        budget = record.meta.get("budget") or {}
        steps = max_steps if max_steps is not None else int(budget.get("max_steps") or 10) + 5
        request = RunRequest(record.task, spec, max_steps=steps, max_tokens=budget.get("max_tokens"),
                             max_seconds=budget.get("max_seconds"), max_cost=budget.get("max_cost"))
        self._check_room(user)
        self._check_request(request)
        agent = self._agent(user, spec, request, (record.meta["server"]["workspace"],
                                                   self.workspace(user, run_id)))
        started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        started.set_result(run_id)

        async def drive() -> None:
            await agent.aresume(run_id)

        return await self._launch(user, agent, drive, started, run_id=run_id)

    def cancel(self, user: str, run_id: str) -> bool:
        """Stop a live run (it ends as "interrupted", resumable); False if it was not running."""
        self.record(user, run_id)
        live = self.live.get(run_id)
        if live is None or live.user != user:
            return False
        live.task.cancel()
        return True

    async def close(self) -> None:
        """Stop every live run (each ends as "interrupted" in its log) and wait for them."""
        tasks = [live.task for live in self.live.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task

    # -- internals ----------------------------------------------------------------------------
    def check(self, user: str, request: RunRequest) -> None:
        """Refuse a request past the server's limits, before anything is made for it."""
        self._check_request(request)
        self._check_room(user)

    def _check_request(self, request: RunRequest) -> None:
        limits = self.config.limits
        if request.model not in self.config.models:
            raise ConfigError(f"model {request.model!r} is not offered here; choose one of "
                              f"{', '.join(self.config.models)}")
        if not request.task.strip():
            raise ConfigError("the task is empty; say what the agent should do")
        if len(request.task) > limits.max_task_chars:
            raise ConfigError(f"the task is longer than {limits.max_task_chars:,} characters")
        if not 1 <= request.max_steps <= limits.max_steps:
            raise ConfigError(f"max_steps must be between 1 and {limits.max_steps}")

    def _check_room(self, user: str) -> None:
        limits = self.config.limits
        if len(self.live) >= limits.max_runs:
            raise Busy(f"the server is running {len(self.live)} runs, its limit; try again when one ends")
        if sum(1 for live in self.live.values() if live.user == user) >= limits.max_runs_per_user:
            raise Busy(f"you have {limits.max_runs_per_user} runs going, the limit per user")

    def _agent(self, user: str, model_name: str, request: RunRequest, workspace: tuple[str, Path]) -> Any:
        from codeact.agent.code_agent import CodeAgent
        from codeact.sandbox import resolve_sandbox

        config = self.config
        self._check_request(request)
        folder = workspace[1]

        def sandbox() -> Sandbox:
            return resolve_sandbox(config.sandbox, workspace=folder, timeout=config.step_timeout)

        budgets: dict[str, Any] = {k: v for k, v in (("max_tokens", request.max_tokens), ("max_seconds", request.max_seconds),
                                     ("max_cost", request.max_cost)) if v is not None}
        agent = CodeAgent(config.models[model_name](), list(config.tools), sandbox=sandbox,
                          max_steps=request.max_steps, step_timeout=config.step_timeout,
                          store=self.store, **budgets, **self.agent_options)
        return agent

    async def _launch(self, user: str, agent: Any, drive: Callable[[], Any], started: asyncio.Future[str],
                      *, run_id: str | None = None) -> str:
        holder: dict[str, str] = {}

        async def guarded() -> None:
            try:
                await drive()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a run's failure is the run's, never the server's
                if not started.done():
                    started.set_exception(exc)
            finally:
                if not started.done():
                    started.set_exception(ConfigError("the run ended before it started"))
                if "id" in holder:
                    self.live.pop(holder["id"], None)
                    self.store.touch(holder["id"])

        task = asyncio.get_running_loop().create_task(guarded())
        if run_id is not None:
            holder["id"] = run_id
            self.live[run_id] = LiveRun(run_id, user, task, agent)
        try:
            new_id = await asyncio.shield(started)
        except Exception:
            if run_id is not None:
                self.live.pop(run_id, None)
            raise
        if run_id is None:
            holder["id"] = new_id
            if not task.done():
                self.live[new_id] = LiveRun(new_id, user, task, agent)
            await self._committed(new_id)
        return new_id

    async def _committed(self, run_id: str, seconds: float = 10.0) -> None:
        """Wait until the run's first events are in the log (the agent commits them before its
        first model call), so the id handed back can be read at once."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while self.store.last_seq(run_id) == 0 and loop.time() < deadline and run_id in self.live:
            await asyncio.sleep(0.01)


def _owner(record: RunRecord) -> str | None:
    server = record.meta.get("server")
    return str(server.get("user")) if isinstance(server, dict) and server.get("user") else None


def _plain_id(text: str) -> bool:
    """A run id or workspace key as the server makes them: short lowercase hex."""
    return 0 < len(text) <= 64 and all(c in "0123456789abcdef" for c in text)
