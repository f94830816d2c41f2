"""Approvals in the dispatcher (no kernel): who is asked, what the call gets, what is reported."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from codeact import tool
from codeact.errors import ConfigError
from codeact.tools.approval import (
    ASK,
    ApprovalDecision,
    ApprovalRequest,
    PendingApprovals,
    approve_all,
    deny_all,
    require_approval,
)
from codeact.tools.dispatch import ToolDispatcher


@tool(needs_approval=True)
def send(to: str, body: str = "hi") -> str:
    """Send a message.

    Args:
        to: Who gets it.
        body: What it says.
    """
    return f"sent {body!r} to {to}"


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def dispatcher(approver: Any = None, **kwargs: Any) -> tuple[ToolDispatcher, list[Any]]:
    seen: list[Any] = []
    d = ToolDispatcher({"send": send, "add": add}, approver=approver,
                       approval_listener=lambda req, dec: seen.append((req, dec)), **kwargs)
    return d, seen


def test_the_flag_is_set_by_the_decorator_and_by_require_approval() -> None:
    assert send.needs_approval and not add.needs_approval
    def f(x: int) -> int:
        """Echo."""
        return x

    fresh = tool(f)
    assert not fresh.needs_approval
    assert require_approval([fresh], "f")[0].needs_approval
    with pytest.raises(ConfigError, match="no tool named nope"):
        require_approval([fresh], "nope")


def test_the_approver_sees_the_request_and_its_approval_runs_the_tool() -> None:
    requests: list[ApprovalRequest] = []

    def approver(request: ApprovalRequest) -> ApprovalDecision:
        requests.append(request)
        return ApprovalDecision.approve(by="test")

    d, seen = dispatcher(approver)
    d.approval_context = lambda: ("run-1", 3)
    outcome = d.call("send", ["bob"])
    assert outcome.ok and outcome.value == "sent 'hi' to bob"
    (request,) = requests
    assert (request.tool, request.arguments, request.run_id, request.step) == ("send", {"to": "bob"}, "run-1", 3)
    assert request.description == "Send a message." and request.timeout_s == 300.0
    assert [dec for _, dec in seen] == [None, ApprovalDecision.approve(by="test")]
    assert seen[0][0] is request


def test_calls_that_need_no_approval_do_not_ask() -> None:
    d, seen = dispatcher(lambda r: pytest.fail("asked"))
    assert d.call("add", [1, 2]).value == 3 and seen == []


def test_a_denial_is_a_permission_error_with_the_message_and_the_tool_does_not_run() -> None:
    ran: list[int] = []

    def t(x: int) -> None:
        """Do it."""
        ran.append(x)

    d = ToolDispatcher({"t": tool(t, needs_approval=True)},
                       approver=lambda r: ApprovalDecision.deny("not on a Friday", by="alice"))
    outcome = d.call("t", [], {"x": 1})
    assert outcome.error_type == "PermissionError"
    assert outcome.error_message == "the call to `t` was denied by alice: not on a Friday"
    assert ran == [] and outcome.record.error.startswith("PermissionError: ")


def test_bools_stand_for_decisions_and_nonsense_is_a_denial() -> None:
    assert dispatcher(lambda r: True)[0].call("send", ["x"]).ok
    assert dispatcher(lambda r: False)[0].call("send", ["x"]).error_type == "PermissionError"
    odd = dispatcher(lambda r: "yes")[0].call("send", ["x"])
    assert odd.error_type == "PermissionError" and "not an ApprovalDecision" in odd.error_message


def test_an_approver_that_raises_denies_the_call() -> None:
    def broken(request: ApprovalRequest) -> bool:
        raise RuntimeError("database down")

    d, seen = dispatcher(broken)
    outcome = d.call("send", ["x"])
    assert "the approver failed: RuntimeError: database down" in outcome.error_message
    assert seen[1][1].verdict == "deny"


def test_without_an_approver_the_call_is_denied_saying_how_to_allow_it() -> None:
    d, seen = dispatcher(None)
    outcome = d.call("send", ["x"])
    assert outcome.error_type == "PermissionError" and "no approver is set" in outcome.error_message
    assert "approver=" in outcome.error_message and seen[1][1].by == "codeact"


def test_an_edit_runs_the_tool_with_the_new_arguments() -> None:
    d, seen = dispatcher(lambda r: ApprovalDecision.edit({"to": "carol", "body": "bye"}, by="ed"))
    outcome = d.call("send", ["bob"])
    assert outcome.value == "sent 'bye' to carol"
    assert outcome.record.arguments == {"to": "carol", "body": "bye"}
    assert seen[1][1].verdict == "edit" and seen[1][1].arguments == {"to": "carol", "body": "bye"}


@pytest.mark.parametrize(
    ("edited", "why"),
    [({"to": "x", "cc": "y"}, "no parameter named cc"), ({"body": "b"}, "missing a required argument: 'to'")],
)
def test_an_edit_that_does_not_fit_the_signature_is_a_denial(edited: dict[str, Any], why: str) -> None:
    d, seen = dispatcher(lambda r: ApprovalDecision.edit(edited, by="ed"))
    outcome = d.call("send", ["bob"])
    assert outcome.error_type == "PermissionError"
    assert "edited arguments do not fit `send`" in outcome.error_message and why in outcome.error_message
    decided = seen[1][1]
    assert decided.verdict == "deny" and decided.arguments == edited and decided.by == "ed"


def test_an_edit_is_checked_by_the_policies_again() -> None:
    d, _ = dispatcher(lambda r: ApprovalDecision.edit({"to": "root"}),
                      policies=[lambda name, args: "not root" if args.get("to") == "root" else None])
    outcome = d.call("send", ["bob"])
    assert outcome.error_message == "the call to `send` was denied: the edited arguments are not allowed: not root"


def test_a_policy_may_ask_and_a_denial_by_another_policy_wins() -> None:
    asked: list[str] = []

    def approver(request: ApprovalRequest) -> bool:
        asked.append(request.reason)
        return True

    d, _ = dispatcher(approver, policies=[lambda name, args: ASK if name == "add" else None])
    assert d.call("add", [2, 2]).value == 4
    assert asked == ["a policy asks for approval of `add`"]
    d.add_policy(lambda name, args: "no adding")
    assert d.call("add", [2, 2]).error_message == "the call to `add` was denied: no adding"
    assert len(asked) == 1


def test_a_time_limit_ends_an_approver_that_never_answers() -> None:
    release = threading.Event()
    d, seen = dispatcher(lambda r: release.wait(), approval_timeout=0.2)
    started = time.monotonic()
    outcome = d.call("send", ["x"])
    release.set()
    assert time.monotonic() - started < 10
    assert outcome.error_message == "the call to `send` was denied by timeout: no decision within 0.2 s"
    assert seen[1][1].timed_out


def test_large_arguments_reach_the_approver_as_a_bounded_preview() -> None:
    requests: list[ApprovalRequest] = []
    d, _ = dispatcher(lambda r: requests.append(r) or True)
    assert d.call("send", ["x", "y" * 1_000_000]).ok
    shown = requests[0].arguments["body"]
    assert len(shown) < 30_000 and "characters not kept" in shown


def test_approve_all_and_deny_all() -> None:
    assert dispatcher(approve_all)[0].call("send", ["x"]).ok
    assert "denied by auto" in dispatcher(deny_all)[0].call("send", ["x"]).error_message


# -- PendingApprovals ----------------------------------------------------------------------------


def _in_thread(d: ToolDispatcher, *args: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(d.call("send", list(args))))
    thread.start()
    return thread, out


def _wait_for(pending: PendingApprovals, n: int = 1) -> list[ApprovalRequest]:
    deadline = time.monotonic() + 20
    while len(pending.pending()) < n:
        assert time.monotonic() < deadline, "no request arrived"
        time.sleep(0.01)
    return pending.pending()


def test_pending_requests_wait_for_an_answer_from_another_thread() -> None:
    pending = PendingApprovals(by="server")
    heard: list[tuple[str, str | None]] = []
    unsubscribe = pending.subscribe(lambda req, dec: heard.append((req.tool, dec and dec.verdict)))
    d, _ = dispatcher(pending)
    d.approval_context = lambda: ("run-a", 1)
    thread, out = _in_thread(d, "bob")
    (request,) = _wait_for(pending)
    assert pending.get(request.id) == request and pending.pending(run_id="other") == []
    assert pending.pending(run_id="run-a") == [request]
    assert pending.answer(request.id, ApprovalDecision.deny("no"))
    thread.join(10)
    assert out[0].error_message == "the call to `send` was denied by server: no"
    assert pending.pending() == [] and not pending.answer(request.id, True)  # decided: no second answer
    assert heard == [("send", None), ("send", "deny")]
    unsubscribe()


def test_pending_requests_time_out_and_leave_the_registry() -> None:
    pending = PendingApprovals()
    d, seen = dispatcher(pending, approval_timeout=0.3)
    outcome = d.call("send", ["x"])
    assert outcome.error_message.endswith("no decision within 0.3 s")
    assert pending.pending() == [] and seen[1][1].timed_out


def test_deny_all_answers_every_waiting_request() -> None:
    pending = PendingApprovals()
    d, _ = dispatcher(pending)
    threads = [_in_thread(d, name) for name in ("a", "b")]
    _wait_for(pending, 2)
    assert pending.deny_all("server stopping") == 2
    for thread, out in threads:
        thread.join(10)
        assert out[0].error_message == "the call to `send` was denied by cancelled: server stopping"


def test_requests_past_max_pending_are_denied_at_once() -> None:
    pending = PendingApprovals(max_pending=1)
    d, _ = dispatcher(pending)
    thread, out = _in_thread(d, "a")
    _wait_for(pending)
    second = d.call("send", ["b"])
    assert "too many calls are waiting for approval (1)" in second.error_message
    pending.deny_all()
    thread.join(10)
    assert out[0].error_type == "PermissionError"
