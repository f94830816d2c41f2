"""Approvals on the server: tool calls held at the bridge until the run's owner decides.

One `PendingApprovals` registry serves every run (it is each agent's approver). A request
carries its run's id; the owner of that run, and nobody else, sees and answers it (another
user's request id answers 404). Pending requests live in the registry, not in a page, so a
reloaded page fetches them again; a request nobody answers within the time limit is denied, and
a cancelled run's requests are denied at once. Each request and decision is also an event in
the run log (`approval_requested`, `approval_decided`), which is how a page watching the run's
stream learns of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import Any

from codeact.runs.redact import Redactor
from codeact.server.record import WatchedStore
from codeact.tools.approval import ApprovalDecision, PendingApprovals
from codeact.tools.tool import Tool

__all__ = ["Approvals"]

RecordLookup = Callable[[str, str], Any]
"""`Runs.record(user, run_id)`: the record, or NotFound for another user's run."""


class Approvals:
    """The server's pending tool calls, per user.

    Args:
        store: told when a request comes or goes, so the run's streams wake.
        timeout: seconds a request waits for an answer before it is denied.
    """

    def __init__(self, store: WatchedStore, *, timeout: float, tools: Iterable[Tool] = ()) -> None:
        self.registry = PendingApprovals(by="server")
        self.timeout = timeout
        # The registry holds the arguments as the code passed them; what the API shows is
        # redacted like the run log's copy (the page shows the same values in both places).
        self._redactor = Redactor.from_environment(tools=list(tools))
        self._store = store
        self._unsubscribe = self.registry.subscribe(self._changed)

    def agent_options(self) -> dict[str, Any]:
        """What each agent is built with so its tool calls ask this registry."""
        return {"approver": self.registry, "approval_timeout": self.timeout}

    def pending(self, user: str, run_id: str | None, record: RecordLookup) -> list[dict[str, Any]]:
        """The requests waiting on `user`'s runs (one run's when `run_id` is given), oldest first."""
        if run_id is not None:
            record(user, run_id)  # NotFound for someone else's run
        mine: dict[str, bool] = {}
        found = []
        for request in self.registry.pending(run_id):
            if request.run_id is None:
                continue
            if request.run_id not in mine:
                mine[request.run_id] = _owns(record, user, request.run_id)
            if mine[request.run_id]:
                shown = asdict(request)
                shown["arguments"] = self._redactor.value(shown["arguments"])
                found.append(shown)
        return found

    def answer(self, user: str, request_id: str, verdict: str, message: str, arguments: dict[str, Any] | None,
               record: RecordLookup) -> bool:
        """Decide a request on `user`'s run; False when it was already decided or timed out."""
        from codeact.server.runs import NotFound

        request = self.registry.get(request_id[:64])
        if request is None or request.run_id is None or not _owns(record, user, request.run_id):
            raise NotFound(f"no pending request {request_id[:64]!r}")
        by = f"server:{user}"
        if verdict == "approve":
            decision = ApprovalDecision.approve(by=by)
        elif verdict == "edit":
            decision = ApprovalDecision.edit(arguments or {}, by=by, message=message)
        else:
            decision = ApprovalDecision.deny(message, by=by)
        return self.registry.answer(request_id, decision)

    def deny_run(self, run_id: str, message: str) -> int:
        """Deny every request of one run (it was cancelled)."""
        return self.registry.deny_all(message, run_id=run_id)

    def close(self) -> None:
        self.registry.deny_all("the server is stopping")
        self._unsubscribe()

    def _changed(self, request: Any, decision: Any) -> None:
        if request.run_id:
            self._store.touch(request.run_id)


def _owns(record: RecordLookup, user: str, run_id: str) -> bool:
    from codeact.server.runs import NotFound

    try:
        record(user, run_id)
    except NotFound:
        return False
    return True
