"""Teams: agents the manager's code calls like functions.

An agent passed in `agents=[...]` becomes a host tool of the manager, `name(task: str) -> str`,
with the member's description as its docstring. The tool runs the member on the host, in its
own sandbox with its own tools (so its secrets and clients never enter the manager's kernel),
and returns the member's answer; a line summing up the member's run (status, steps, tokens,
the tools it called, its run id) is added to the manager's observation.

Why a tool and not a loop feature: tools already run on the host over the RPC bridge, are
logged, refused by policy and bounded in time; a member is one more such tool. Marked
`concurrent`, so threads in the manager's code can wait on several members at once (the bridge
runs each call on its own thread).

Budgets: a member runs with the manager's budget left (tokens, cost, time: the smaller of its
own and what the manager has left), and what it spent is added to the manager's run through
`Execution.extra_usage`/`extra_cost`, so the manager's budgets cover the whole team. Members
called at the same time each start with what was left when they started; if together they
overrun, the manager's run ends after that step (status budget_exceeded).

The record: each member run is a run in the manager's log, with `parent_run`, `parent_step`
and `member` in its meta (`codeact show` prints the tree). One member runs one task at a time:
calls to the same member from two threads wait for each other (its kernel holds one run).
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from codeact.agent.loop import Budget
from codeact.errors import BudgetExceeded, CodeactError, ConfigError
from codeact.models.base import Usage
from codeact.runs.result import RunResult
from codeact.sandbox.base import Execution
from codeact.tools.tool import FunctionTool, Tool

Agent = Any
"""`codeact.agent.agent.Agent`, which imports this module (so it is not imported back)."""

__all__ = ["Member", "MemberFailed", "Team", "summarize"]

_NOTE_CHARS = 400
"""What the manager's observation keeps of one member's summary line."""


@dataclass(frozen=True)
class Member:
    """An agent as a team member: the name the manager calls it by and what it is good for.

    `CodeAgent(..., name="researcher", description="...")` needs no wrapper; `Member` names an
    agent made without them (or names it differently in this team).
    """

    agent: Agent
    name: str
    description: str


class MemberFailed(CodeactError):
    """A member ended without an answer; the manager's code gets this as the call's error."""


class Team:
    """A manager's members as host tools, and what their runs spent since the manager's last step.

    Args:
        manager: the agent whose code calls the members.
        members: agents with a `name` and a `description`, or `Member`s.
    """

    def __init__(self, manager: Agent, members: Sequence[Agent | Member]) -> None:
        self.manager = manager
        self.members = [_member(m) for m in members]
        names = [m.name for m in self.members]
        doubled = sorted({n for n in names if names.count(n) > 1})
        if doubled:
            raise ConfigError(f"two team members are named {doubled[0]!r}; give each a unique name")
        for member in self.members:
            if member.agent is manager:
                raise ConfigError(f"agent {member.name!r} cannot be a member of its own team")
            if manager.budget.max_cost is not None:
                member.agent.prices.require(member.agent.model_name)  # its runs must be priced
        self.tools: dict[str, Tool] = {m.name: _member_tool(self, m) for m in self.members}
        self._locks = {m.name: threading.Lock() for m in self.members}
        self._lock = threading.Lock()
        self._usage = Usage()
        self._cost = 0.0
        self._notes: list[str] = []

    def ask(self, member: Member, task: str) -> str:
        """Run `member` on `task` under what is left of the manager's budget; its answer as text."""
        manager = self.manager
        acting = manager._acting  # the action calling us: its step, and what the run spent before it
        session = manager._session
        parent = {"parent_run": session.run_id if session is not None else None,
                  "parent_step": acting[0].step if acting is not None else None, "member": member.name}
        with self._locks[member.name]:
            budget = self._budget_left(member.agent, acting)
            result: RunResult | None = None
            try:
                with _lent(member.agent, budget, parent, manager.store):
                    result = member.agent.run(task)
            finally:
                if result is not None:
                    self._spent(member, result)
        assert result is not None
        if result.status != "success":
            partial = _text(result.output) if result.output is not None else "nothing"
            raise MemberFailed(f"{member.name} ended without an answer ({result.status}: {result.error}); "
                               f"what it had: {partial[:2_000]}")
        return _text(result.output)

    def settle(self, execution: Execution) -> Execution:
        """`execution` with what members spent since the last call, and their summary lines."""
        with self._lock:
            usage, cost, notes = self._usage, self._cost, self._notes
            self._usage, self._cost, self._notes = Usage(), 0.0, []
        if not notes and not usage.total_tokens:
            return execution
        stdout = execution.stdout
        if notes:
            stdout += ("\n" if stdout and not stdout.endswith("\n") else "") + "\n".join(notes)
        return dataclasses.replace(execution, stdout=stdout, extra_usage=execution.extra_usage + usage,
                                   extra_cost=execution.extra_cost + cost)

    def _spent(self, member: Member, result: RunResult) -> None:
        cost = member.agent.prices.cost(member.agent.model_name, result.usage) or 0.0
        with self._lock:
            self._usage = self._usage + result.usage
            self._cost += cost
            self._notes.append(summarize(member.name, result)[:_NOTE_CHARS])

    def _budget_left(self, agent: Agent, acting: tuple[Any, float] | None) -> Budget:
        """The member's budget, capped by what the manager has left (less what members spent
        in this step already, not yet in the manager's count)."""
        own, boss = agent.budget, self.manager.budget
        if acting is None:
            return own
        effect, step_started = acting
        with self._lock:
            pending, pending_cost = self._usage, self._cost
        tokens = seconds = cost = None
        if boss.max_tokens is not None:
            tokens = boss.max_tokens - effect.spent.total_tokens - pending.total_tokens
            if tokens <= 0:
                raise BudgetExceeded("tokens", boss.max_tokens, boss.max_tokens - tokens)
        if boss.max_cost is not None and effect.spent_cost is not None:
            cost = boss.max_cost - effect.spent_cost - pending_cost
            if cost <= 0:
                raise BudgetExceeded("cost", boss.max_cost, boss.max_cost - cost)
        now = time.monotonic()
        ends = [t for t in (effect.deadline, _step_end(self.manager, step_started)) if t is not None]
        if ends:
            seconds = min(ends) - now
            if seconds <= 0:
                raise BudgetExceeded("seconds", min(ends) - step_started, now - step_started)
        cost_of = own.cost_of
        if cost is not None and cost_of is None:
            cost_of = agent.prices.require(agent.model_name).cost
        return Budget(own.max_steps, _least(own.max_tokens, tokens), _least(own.max_seconds, seconds),
                      _least(own.max_cost, cost), cost_of)


def summarize(name: str, result: RunResult) -> str:
    """One line on a member's run, for the manager's observation."""
    calls = Counter(call.name for step in result.steps for call in step.tool_calls)
    used = ", ".join(f"{tool}×{count}" if count > 1 else tool for tool, count in calls.most_common(8))
    run = f"; run {result.run_id}" if result.run_id else ""
    return (f"[{name}: {result.status} after {len(result.steps)} step(s), {result.usage.total_tokens:,} tokens; "
            f"called {used or 'no tools'}{run}]")


def _member(item: Agent | Member) -> Member:
    if isinstance(item, Member):
        return item
    name, description = getattr(item, "name", None), getattr(item, "description", None)
    if not name or not description:
        raise ConfigError("a team member needs a name and a description: CodeAgent(..., name='researcher', "
                          "description='Finds ...') or Member(agent, name=..., description=...)")
    return Member(item, name, description)


def _member_tool(team: Team, member: Member) -> Tool:
    def ask(task: str) -> str:
        return team.ask(member, task)

    ask.__doc__ = (f"{member.description.strip()}\n\nArgs:\n    task: the whole task for {member.name}, "
                   "with every fact it needs (it sees nothing else); returns its answer as text.\n")
    made = FunctionTool(ask, name=member.name)
    made.concurrent = True
    return made


@contextmanager
def _lent(agent: Agent, budget: Budget, meta: dict[str, Any], store: Any) -> Iterator[None]:
    """`agent` for one member run: the budget left, the parent in its meta, the manager's log."""
    saved = agent.budget, agent.run_meta, agent._store_option, agent._store
    agent.budget, agent.run_meta = budget, {**agent.run_meta, **meta}
    if store is not None:
        agent._store_option, agent._store = store, store
    try:
        yield
    finally:
        agent.budget, agent.run_meta, agent._store_option, agent._store = saved


def _step_end(manager: Agent, started: float) -> float | None:
    limit = getattr(manager, "step_timeout", None)
    return started + limit if isinstance(limit, (int, float)) else None


def _least(own: float | int | None, left: float | int | None) -> Any:
    if left is None:
        return own
    return left if own is None else min(own, left)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(value)
