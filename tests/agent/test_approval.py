"""Approvals through the real kernel: code calls a tool, the host holds the call, the approver decides."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codeact import CodeAgent, tool
from codeact.events import ApprovalDecided, ApprovalRequested, ToolCalled
from codeact.models import ScriptedModel
from codeact.runs.store import RunStore
from codeact.sandbox.local import LocalSandbox
from codeact.tools.approval import ASK, ApprovalDecision, ApprovalRequest, PendingApprovals
from tests._isolation import require_sandbox

pytestmark = require_sandbox()

SENT: list[tuple[str, str]] = []


@tool(needs_approval=True)
def send(to: str, body: str = "hi") -> str:
    """Send a message.

    Args:
        to: Who gets it.
        body: What it says.
    """
    SENT.append((to, body))
    return f"sent to {to}"


@tool
def lookup(key: str) -> str:
    """Look a key up."""
    return key.upper()


def code(src: str) -> str:
    return f"Thought: go.\n```python\n{src}\n```"


@pytest.fixture
def sandbox() -> Iterator[LocalSandbox]:
    with LocalSandbox(timeout=30, interrupt_grace=1.0) as sb:
        yield sb


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    with RunStore(tmp_path / "runs.db") as s:
        yield s


def agent(sandbox: LocalSandbox, store: RunStore, replies: list[str], **kwargs: Any) -> CodeAgent:
    SENT.clear()
    return CodeAgent(ScriptedModel(replies), [send, lookup], sandbox=sandbox, store=store, **kwargs)


def observations(result: Any) -> list[str]:
    return [step.observation for step in result.steps]


def test_an_approved_call_runs_and_both_events_are_logged_and_streamed(sandbox: LocalSandbox,
                                                                       store: RunStore) -> None:
    requests: list[ApprovalRequest] = []

    def approver(request: ApprovalRequest) -> ApprovalDecision:
        requests.append(request)
        return ApprovalDecision.approve(by="test")

    a = agent(sandbox, store, [code("r = send('bob', body='token sk-abcdefghijklmnopqrstuvwxyz123456')\n"
                                    "print(r)\nfinal_answer(r)")], approver=approver)
    events = list(a.run("send it", stream=True))
    result = events[-1].result
    assert result.output == "sent to bob" and SENT == [("bob", "token sk-abcdefghijklmnopqrstuvwxyz123456")]
    (request,) = requests
    assert request.run_id == result.run_id and request.step == 1 and request.tool == "send"
    kinds = [e.kind for e in events]
    assert kinds.index("approval_requested") < kinds.index("approval_decided") < kinds.index("tool_called")
    logged = [e for e in store.events(result.run_id) if isinstance(e, (ApprovalRequested, ApprovalDecided))]
    asked, decided = logged
    assert asked.request_id == decided.request_id == request.id and asked.step == 1
    assert asked.arguments["to"] == "bob" and "sk-abcdefghij" not in str(asked.arguments)  # redacted in the log
    assert "[REDACTED" in asked.arguments["body"]
    assert (decided.verdict, decided.by, decided.timed_out) == ("approve", "test", False)


def test_a_denied_call_raises_permission_error_that_the_code_catches(sandbox: LocalSandbox,
                                                                     store: RunStore) -> None:
    a = agent(sandbox, store, [code(
        "try:\n    send('bob')\nexcept PermissionError as e:\n    print('caught:', e)\n"
        "print(lookup('after'))\nfinal_answer('done')"
    )], approver=lambda r: ApprovalDecision.deny("bob is on holiday", by="alice"))
    result = a.run("send it")
    assert result.output == "done" and SENT == []
    out = observations(result)[0]
    assert "caught: PermissionError: the call to `send` was denied by alice: bob is on holiday" in out
    assert "AFTER" in out
    decided = [e for e in store.events(result.run_id) if isinstance(e, ApprovalDecided)]
    assert decided[0].verdict == "deny" and decided[0].message == "bob is on holiday"


def test_an_edit_runs_the_tool_with_the_edited_arguments(sandbox: LocalSandbox, store: RunStore) -> None:
    a = agent(sandbox, store, [code("final_answer(send('bob'))")],
              approver=lambda r: ApprovalDecision.edit({"to": "carol", "body": "edited"}, by="ed"))
    result = a.run("send it")
    assert result.output == "sent to carol" and SENT == [("carol", "edited")]
    called = [e for e in store.events(result.run_id) if isinstance(e, ToolCalled)]
    assert called[0].call.arguments == {"to": "carol", "body": "edited"}


def test_an_edit_that_does_not_fit_is_a_denial_the_code_sees(sandbox: LocalSandbox, store: RunStore) -> None:
    a = agent(sandbox, store, [code(
        "try:\n    send('bob')\nexcept PermissionError as e:\n    final_answer(str(e))"
    )], approver=lambda r: ApprovalDecision.edit({"recipient": "carol"}, by="ed"))
    result = a.run("send it")
    assert SENT == []
    assert "edited arguments do not fit `send`: no parameter named recipient" in result.output


def test_a_pending_approval_times_out_as_a_denial(sandbox: LocalSandbox, store: RunStore) -> None:
    pending = PendingApprovals()
    a = agent(sandbox, store, [code(
        "try:\n    send('bob')\nexcept PermissionError as e:\n    final_answer(str(e))"
    )], approver=pending, approval_timeout=0.5)
    result = a.run("send it")
    assert result.output.endswith("was denied by timeout: no decision within 0.5 s") and SENT == []
    decided = [e for e in store.events(result.run_id) if isinstance(e, ApprovalDecided)]
    assert decided[0].timed_out and pending.pending() == []


def test_the_step_clock_waits_while_a_person_decides(sandbox: LocalSandbox, store: RunStore) -> None:
    """A 1 s step timeout and a 3 s decision: the step is not interrupted, the kernel keeps its state."""

    def slow(request: ApprovalRequest) -> bool:
        time.sleep(3.0)
        return True

    a = agent(sandbox, store, [code("x = 41\nr = send('bob')\nfinal_answer(f'{r} {x + 1}')")],
              approver=slow, step_timeout=1.0)
    result = a.run("send it")
    assert result.output == "sent to bob 42" and SENT == [("bob", "hi")]


def test_the_step_clock_still_runs_after_the_approval(sandbox: LocalSandbox, store: RunStore) -> None:
    a = agent(sandbox, store, [code("send('bob')\nwhile True:\n    pass"), code("final_answer('stopped')")],
              approver=lambda r: True, step_timeout=1.5)
    started = time.monotonic()
    result = a.run("send it")
    assert result.output == "stopped" and "time limit" in observations(result)[0]
    assert time.monotonic() - started < 30


def test_a_policy_may_ask_for_approval(sandbox: LocalSandbox, store: RunStore) -> None:
    asked: list[str] = []
    sandbox.dispatcher.add_policy(lambda name, args: ASK if name == "lookup" else None)
    a = agent(sandbox, store, [code("final_answer(lookup('k'))")],
              approver=lambda r: asked.append(r.reason) or True)
    assert a.run("look").output == "K"
    assert asked == ["a policy asks for approval of `lookup`"]


def test_calls_from_threads_each_get_their_own_request(sandbox: LocalSandbox, store: RunStore) -> None:
    pending = PendingApprovals(by="server")
    answered: list[str] = []

    def answer_all() -> None:  # a "server" answering from another thread
        deadline = time.monotonic() + 60
        while len(answered) < 3 and time.monotonic() < deadline:
            for request in pending.pending():
                if pending.answer(request.id, ApprovalDecision.approve()):
                    answered.append(request.arguments["to"])
            time.sleep(0.01)

    server = threading.Thread(target=answer_all)
    server.start()
    a = agent(sandbox, store, [code(
        "import threading\nout = []\n"
        "ts = [threading.Thread(target=lambda n=n: out.append(send(n))) for n in ('a', 'b', 'c')]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\nfinal_answer(sorted(out))"
    )], approver=pending)
    result = a.run("send three")
    server.join(60)
    assert result.output == ["sent to a", "sent to b", "sent to c"]
    assert sorted(answered) == ["a", "b", "c"]
    asked = [e for e in store.events(result.run_id) if isinstance(e, ApprovalRequested)]
    assert len({e.request_id for e in asked}) == 3


def test_without_an_approver_the_code_is_told_how_to_allow_the_call(sandbox: LocalSandbox,
                                                                    store: RunStore) -> None:
    a = agent(sandbox, store, [code("try:\n    send('bob')\nexcept PermissionError as e:\n    final_answer(str(e))")])
    result = a.run("send it")
    assert "no approver is set" in result.output and SENT == []


def test_resume_asks_only_for_calls_that_really_run_again(tmp_path: Path, store: RunStore) -> None:
    """Recorded calls served from the log run nothing, so nobody is asked; live calls are asked."""
    asked: list[str] = []

    def approver(request: ApprovalRequest) -> bool:
        asked.append(request.arguments["to"])
        return True

    fresh = lambda: LocalSandbox(timeout=30)  # noqa: E731 - a new kernel per run, as resume needs
    SENT.clear()
    first = CodeAgent(ScriptedModel([code("x = send('one')")]), [send], sandbox=fresh, store=store,
                      approver=approver)
    failed = first.run("send")  # the model has no second reply: the run stops after step 1
    assert failed.status == "model_error" and asked == ["one"]
    second = CodeAgent(ScriptedModel([code("final_answer(x + ' / ' + send('two'))")]), [send], sandbox=fresh,
                       store=store, approver=approver)
    assert second.resume(failed.run_id).output == "sent to one / sent to two"
    assert asked == ["one", "two"] and SENT == [("one", "hi"), ("two", "hi")]
    third = CodeAgent(ScriptedModel([code("final_answer(x)")]), [send], sandbox=fresh, store=store,
                      approver=approver)
    third.resume(CodeAgent(ScriptedModel([code("x = send('three')")]), [send], sandbox=fresh, store=store,
                           approver=approver).run("send").run_id, live_tools=True)
    assert asked == ["one", "two", "three", "three"]  # live tools: the re-run call is asked again


def test_the_tool_calling_agent_asks_too(store: RunStore) -> None:
    from codeact.agent.tool_calling_agent import ToolCallingAgent
    from codeact.models import ModelReply, ToolCall

    SENT.clear()
    model = ScriptedModel([ModelReply("", tool_calls=(ToolCall("c1", "send", {"to": "bob"}),)),
                           ModelReply("", tool_calls=(ToolCall("c2", "final_answer", {"answer": "ok"}),))])
    a = ToolCallingAgent(model, [send], store=store, approver=lambda r: ApprovalDecision.deny("not today"))
    result = a.run("send")
    assert SENT == [] and "denied: not today" in result.steps[0].observation
    kinds = [e.kind for e in store.events(result.run_id)]
    assert "approval_requested" in kinds and "approval_decided" in kinds


def test_concurrent_tools_are_asked_at_the_same_time(sandbox: LocalSandbox, store: RunStore) -> None:
    """A `concurrent` tool's calls run side by side, so a server sees both requests waiting at once."""

    @tool(needs_approval=True)
    def book(seat: str) -> str:
        """Book a seat."""
        return f"booked {seat}"

    book.concurrent = True
    pending = PendingApprovals()
    together: list[int] = []

    def answer_when_both_wait() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(pending.pending()) < 2:
            time.sleep(0.01)
        together.append(len(pending.pending()))
        time.sleep(2.0)  # longer than the step's time limit: the clock is held
        for request in pending.pending():
            pending.answer(request.id, True)

    server = threading.Thread(target=answer_when_both_wait)
    server.start()
    a = CodeAgent(ScriptedModel([code(
        "import threading\nout = []\n"
        "ts = [threading.Thread(target=lambda s=s: out.append(book(s))) for s in ('1A', '1B')]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\nfinal_answer(sorted(out))"
    )]), [book], sandbox=sandbox, store=store, approver=pending, step_timeout=1.5)
    result = a.run("book two")
    server.join(60)
    assert together == [2] and result.output == ["booked 1A", "booked 1B"]
