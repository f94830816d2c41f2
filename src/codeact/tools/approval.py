"""Approval of tool calls: the host holds a call until someone (a callback, a person) decides.

Every tool call from the model's code crosses the bridge to the host, so the host can stop there
and ask. A tool asks when it is marked (`needs_approval`), a policy asks by returning `ASK`. The
approver answers with an `ApprovalDecision`: approve, deny with a message (the code gets a
PermissionError it can catch), or approve with edited arguments (bound again to the tool's
signature). A time limit ends a pending request as a denial, whatever the approver does: it is
called on a helper thread and the dispatcher stops waiting at the limit.

`PendingApprovals` is an approver for servers and UIs: requests wait in a registry until another
thread answers them (`answer`), and callbacks hear about each request and decision.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from codeact.tools.tool import Tool

__all__ = [
    "ASK",
    "ApprovalDecision",
    "ApprovalListener",
    "ApprovalRequest",
    "ApprovalVerdict",
    "Approver",
    "PendingApprovals",
    "approve_all",
    "ask_approver",
    "deny_all",
    "make_request",
    "require_approval",
    "timed_out",
]

ASK = "ask"
"""What a policy returns to send a call to the approver instead of allowing or denying it."""

ApprovalVerdict = Literal["approve", "deny", "edit"]


@dataclass(frozen=True)
class ApprovalRequest:
    """A tool call waiting for a decision.

    `arguments` are bound by parameter name (`f(1)` and `f(x=1)` look the same), a bounded
    preview when large; they come from the model's code: escape them wherever they are shown.
    """

    id: str
    tool: str
    arguments: dict[str, Any]
    description: str = ""
    reason: str = ""
    """Why it is asked: the tool needs approval, or a policy's wording."""
    run_id: str | None = None
    step: int | None = None
    timeout_s: float | None = None
    created_at: float = 0.0
    """time.time() when it was asked."""

    @property
    def deadline(self) -> float | None:
        """When (time.time()) the request ends as a denial; None without a limit."""
        return None if self.timeout_s is None else self.created_at + self.timeout_s


@dataclass(frozen=True)
class ApprovalDecision:
    """The answer to an ApprovalRequest. Build one with `approve()`, `deny(message)` or `edit(arguments)`."""

    verdict: ApprovalVerdict
    message: str = ""
    """For a denial: the reason, which the model's code reads in the exception."""
    arguments: dict[str, Any] | None = None
    """For an edit: the arguments the tool gets instead, by parameter name (all of them)."""
    by: str = ""
    """Who decided: "terminal", "server:alice", "auto", "timeout"..."""
    timed_out: bool = False

    @classmethod
    def approve(cls, *, by: str = "") -> ApprovalDecision:
        return cls("approve", by=by)

    @classmethod
    def deny(cls, message: str = "", *, by: str = "") -> ApprovalDecision:
        return cls("deny", message=message, by=by)

    @classmethod
    def edit(cls, arguments: Mapping[str, Any], *, by: str = "", message: str = "") -> ApprovalDecision:
        return cls("edit", message=message, arguments=dict(arguments), by=by)

    @property
    def approved(self) -> bool:
        return self.verdict != "deny"


Approver = Callable[[ApprovalRequest], "ApprovalDecision | bool"]
"""Decides a request; True and False stand for approve and deny."""

ApprovalListener = Callable[[ApprovalRequest, "ApprovalDecision | None"], None]
"""Told about each request twice: with None when it is asked, with the decision when decided."""


def approve_all(request: ApprovalRequest) -> ApprovalDecision:
    """An approver that approves everything (tests, trusted batch runs)."""
    return ApprovalDecision.approve(by="auto")


def deny_all(request: ApprovalRequest) -> ApprovalDecision:
    """An approver that denies everything."""
    return ApprovalDecision.deny("calls that need approval are denied in this run", by="auto")


def require_approval(tools: Iterable[Tool], *names: str) -> list[Tool]:
    """Mark `tools` (those called `names`, or all without names) as needing approval; MCP tools too."""
    out = list(tools)
    unknown = set(names) - {t.name for t in out}
    if unknown:
        from codeact.errors import ConfigError

        raise ConfigError(f"no tool named {', '.join(sorted(unknown))} to require approval for")
    for t in out:
        if not names or t.name in names:
            t.needs_approval = True
    return out


def ask_approver(approver: Approver | None, request: ApprovalRequest) -> ApprovalDecision:
    """The approver's decision, or a denial when it fails, answers nonsense or runs past the limit.

    The approver runs on a daemon thread so that the limit holds even for a callback that never
    returns (its late answer is dropped; a `cancel(request_id)` method, if it has one, is called).
    """
    if approver is None:
        return ApprovalDecision.deny(
            f"`{request.tool}` needs approval and no approver is set "
            "(pass approver= to the agent, or --approval to `codeact run`)",
            by="codeact",
        )
    box: list[ApprovalDecision] = []
    done = threading.Event()

    def decide() -> None:
        try:
            box.append(_as_decision(approver(request)))
        except Exception as exc:  # noqa: BLE001 - a failing approver denies, it does not crash the step
            box.append(ApprovalDecision.deny(f"the approver failed: {type(exc).__name__}: {exc}"[:2_000],
                                             by="codeact"))
        finally:
            done.set()

    threading.Thread(target=decide, name="codeact-approval", daemon=True).start()
    # A little grace past the limit: an approver that honours `timeout_s` itself answers first.
    wait = None if request.timeout_s is None else max(request.timeout_s, 0.0) + 0.5
    if done.wait(wait) and box:
        return box[0]
    cancel = getattr(approver, "cancel", None)
    if callable(cancel):
        try:
            cancel(request.id, _timeout_message(request))
        except Exception:  # noqa: BLE001, S110 - the request is denied either way
            pass
    return timed_out(request)


def timed_out(request: ApprovalRequest) -> ApprovalDecision:
    """The denial a request gets when nobody decided in time."""
    return ApprovalDecision("deny", _timeout_message(request), by="timeout", timed_out=True)


def _timeout_message(request: ApprovalRequest) -> str:
    return f"no decision within {request.timeout_s or 0:g} s"


def _as_decision(answer: Any) -> ApprovalDecision:
    if isinstance(answer, ApprovalDecision):
        if answer.verdict not in ("approve", "deny", "edit"):
            return ApprovalDecision.deny(f"the approver answered an unknown verdict {answer.verdict!r}"[:500],
                                         by="codeact")
        if answer.verdict == "edit" and not isinstance(answer.arguments, Mapping):
            return ApprovalDecision.deny("the approver edited the call without giving arguments", by=answer.by)
        return answer
    if answer is True:
        return ApprovalDecision.approve(by="approver")
    if answer is False:
        return ApprovalDecision.deny(by="approver")
    return ApprovalDecision.deny(
        f"the approver answered {type(answer).__name__}, not an ApprovalDecision or a bool", by="codeact"
    )


def new_request_id() -> str:
    return uuid.uuid4().hex


# -- a registry that another thread answers ----------------------------------------------------


@dataclass
class _Slot:
    request: ApprovalRequest
    done: threading.Event = field(default_factory=threading.Event)
    decision: ApprovalDecision | None = None


class PendingApprovals:
    """An approver whose requests wait until another thread answers them (a server, a UI).

    Pass it as `approver=`; each request then waits (blocking the tool call, not the caller of
    `answer`) until `answer(id, decision)`, `cancel(id)` or its time limit. Thread-safe; `answer`
    never blocks, so an event loop may call it directly.

    Args:
        by: the `by` a decision gets when its answer leaves it empty.
        max_pending: requests that may wait at once; more are denied at once (model code can
            make many calls from many threads, and each waiting request holds one).
    """

    def __init__(self, *, by: str = "", max_pending: int = 1_000) -> None:
        self.by = by
        self.max_pending = max_pending
        self._lock = threading.Lock()
        self._slots: dict[str, _Slot] = {}
        self._subscribers: list[ApprovalListener] = []

    def __call__(self, request: ApprovalRequest) -> ApprovalDecision:
        slot = _Slot(request)
        with self._lock:
            if len(self._slots) >= self.max_pending:
                return ApprovalDecision.deny(f"too many calls are waiting for approval ({self.max_pending:,})",
                                             by="codeact")
            self._slots[request.id] = slot
        self._tell(request, None)
        answered = slot.done.wait(request.timeout_s)
        with self._lock:
            self._slots.pop(request.id, None)
            if not answered and slot.decision is None:
                slot.decision = timed_out(request)
                slot.done.set()
            decision = slot.decision
        assert decision is not None
        if not answered and decision.timed_out:
            self._tell(request, decision)
        return decision

    def pending(self, run_id: str | None = None) -> list[ApprovalRequest]:
        """Requests waiting now, oldest first; those of one run when `run_id` is given."""
        with self._lock:
            requests = [s.request for s in self._slots.values() if not s.done.is_set()]
        if run_id is not None:
            requests = [r for r in requests if r.run_id == run_id]
        return sorted(requests, key=lambda r: r.created_at)

    def get(self, request_id: str) -> ApprovalRequest | None:
        with self._lock:
            slot = self._slots.get(request_id)
            return None if slot is None or slot.done.is_set() else slot.request

    def answer(self, request_id: str, decision: ApprovalDecision | bool) -> bool:
        """Decide a waiting request; False when there is none with that id (decided, timed out)."""
        decision = _as_decision(decision)
        if not decision.by and self.by:
            decision = ApprovalDecision(decision.verdict, decision.message, decision.arguments, self.by,
                                        decision.timed_out)
        with self._lock:
            slot = self._slots.get(request_id)
            if slot is None or slot.done.is_set():
                return False
            slot.decision = decision
            slot.done.set()
        self._tell(slot.request, decision)
        return True

    def cancel(self, request_id: str, message: str = "") -> bool:
        """Deny a waiting request now (by "cancelled")."""
        return self.answer(request_id, ApprovalDecision.deny(message or "the request was cancelled", by="cancelled"))

    def deny_all(self, message: str = "", *, run_id: str | None = None) -> int:
        """Deny every waiting request (of one run when `run_id` is given); how many there were."""
        return sum(self.cancel(r.id, message) for r in self.pending(run_id))

    def subscribe(self, callback: ApprovalListener) -> Callable[[], None]:
        """Call `callback(request, None)` for each new request and `callback(request, decision)` for
        each decision, from the thread where it happens; returns a function that unsubscribes."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def _tell(self, request: ApprovalRequest, decision: ApprovalDecision | None) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(request, decision)
            except Exception:  # noqa: BLE001, S112 - a failing watcher must not decide the call
                continue


def make_request(
    tool: Tool,
    arguments: dict[str, Any],
    *,
    reason: str,
    timeout_s: float | None,
    run_id: str | None = None,
    step: int | None = None,
) -> ApprovalRequest:
    """A new request for a call of `tool` (the dispatcher's; tests may use it too)."""
    return ApprovalRequest(
        id=new_request_id(),
        tool=tool.name,
        arguments=arguments,
        description=tool.summary[:500],
        reason=reason,
        run_id=run_id,
        step=step,
        timeout_s=timeout_s,
        created_at=time.time(),
    )
