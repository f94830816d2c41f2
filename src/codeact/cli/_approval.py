"""Approving tool calls in the terminal: `codeact run --approval ask` (the default).

The approver runs on a helper thread while the code waits in its tool call (see
`codeact.tools.approval`); it pauses the live view, shows the call as data (escaped, never
markup) and reads one answer line: y(es), n(o), e(dit) to type new arguments as a JSON object,
or m(essage) to deny with a reason the code will read. No answer before the request's time limit
is a denial. Without a terminal on stdin nobody can answer, so calls are denied at once, saying
which flag allows them.
"""

from __future__ import annotations

import json
import os
import select
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any, Literal

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from codeact.cli._text import safe, visible
from codeact.errors import ConfigError
from codeact.tools.approval import ApprovalDecision, ApprovalRequest, Approver, approve_all, timed_out

__all__ = ["ApprovalMode", "TerminalApprover", "approver_for"]

ApprovalMode = Literal["ask", "auto", "deny"]
_SHOWN_CHARS = 4_000
"""Characters of the arguments the prompt shows (the run log keeps them in full, up to its caps)."""
_TRIES = 3


def approver_for(mode: str, console: Console, stdin: IO[str] | None = None) -> Approver:
    """The approver `--approval MODE` asks for."""
    if mode == "auto":
        return approve_all
    if mode == "deny":
        return lambda request: ApprovalDecision.deny("calls that need approval are denied (--approval deny)",
                                                     by="cli")
    if mode == "ask":
        return TerminalApprover(console, stdin)
    raise ConfigError(f"--approval must be ask, auto or deny, not {mode!r}")


class TerminalApprover:
    """Asks in the terminal, one request at a time.

    Args:
        console: where the request is shown (stderr).
        stdin: where answers are read; `sys.stdin` by default.
    """

    def __init__(self, console: Console, stdin: IO[str] | None = None) -> None:
        self.console = console
        self.stdin = stdin if stdin is not None else sys.stdin
        self.pause: Callable[[], None] | None = None
        """Called before a prompt (the live view erases its status line)."""
        self._lock = threading.Lock()

    def __call__(self, request: ApprovalRequest) -> ApprovalDecision:
        if not _interactive(self.stdin):
            return ApprovalDecision.deny(
                f"`{request.tool}` needs approval and there is no terminal to ask (stdin is not a TTY); "
                "run with --approval auto to allow such calls or --approval deny to refuse them",
                by="cli",
            )
        with self._lock:  # calls from several threads are asked one after another
            if self.pause is not None:
                self.pause()
            self._show(request)
            return self._ask(request)

    def _show(self, request: ApprovalRequest) -> None:
        try:
            shown = json.dumps(request.arguments, ensure_ascii=False, indent=2, default=repr)
        except (TypeError, ValueError):
            shown = repr(request.arguments)
        if len(shown) > _SHOWN_CHARS:
            shown = shown[:_SHOWN_CHARS] + f"\n... ({len(shown) - _SHOWN_CHARS:,} more characters)"
        lines = Text.assemble(safe(f"{request.tool}", "bold"), safe(f"  {request.description}", "dim"), "\n",
                              safe(shown), "\n", safe(request.reason, "dim"))
        title = f"approval needed · step {request.step}" if request.step else "approval needed"
        self.console.print(Panel(lines, title=title, title_align="left", border_style="yellow"))

    def _ask(self, request: ApprovalRequest) -> ApprovalDecision:
        limit = "" if request.deadline is None else f" (no answer in {request.timeout_s:g} s denies)"
        for _ in range(_TRIES):
            answer = self._line(f"Approve? y(es) / n(o) / e(dit arguments) / m(essage, then deny){limit}: ",
                                request)
            if answer is None:
                return self._late(request)
            choice = answer.strip().lower()
            if choice in ("y", "yes"):
                return ApprovalDecision.approve(by="terminal")
            if choice in ("n", "no", ""):
                return ApprovalDecision.deny("denied in the terminal", by="terminal")
            if choice in ("m", "message"):
                message = self._line("Message for the code: ", request)
                if message is None:
                    return self._late(request)
                return ApprovalDecision.deny(message.strip() or "denied in the terminal", by="terminal")
            if choice in ("e", "edit"):
                edited = self._edit(request)
                if edited is not None:
                    return edited
                continue
            self.console.print(safe("Answer y, n, e or m.", "yellow"))
        return ApprovalDecision.deny("no valid answer in the terminal", by="terminal")

    def _edit(self, request: ApprovalRequest) -> ApprovalDecision | None:
        text = self._line("New arguments as one JSON object: ", request)
        if text is None:
            return self._late(request)
        try:
            arguments = json.loads(text)
        except ValueError as exc:
            self.console.print(safe(f"Not JSON: {exc}", "red"))
            return None
        if not isinstance(arguments, dict):
            self.console.print(safe("The arguments must be a JSON object: {\"name\": value, ...}", "red"))
            return None
        return ApprovalDecision.edit(arguments, by="terminal")

    def _late(self, request: ApprovalRequest) -> ApprovalDecision:
        self.console.print(safe("\nno answer in time: the call is denied", "red"))
        return timed_out(request)

    def _line(self, prompt: str, request: ApprovalRequest) -> str | None:
        """One line from stdin, or None once the request's time is up (or stdin is closed)."""
        self.console.print(safe(prompt, "bold yellow"), end="")
        self.console.file.flush()
        deadline = request.deadline
        fd = _fileno(self.stdin)
        if deadline is not None and fd is not None:
            left = deadline - time.time()
            if left <= 0:
                return None
            try:
                ready, _, _ = select.select([fd], [], [], left)
            except (OSError, ValueError):
                ready = [fd]
            if not ready:
                return None
        line = self.stdin.readline()
        if not line:
            return None  # end of input
        return visible(line.rstrip("\n"))[:100_000]


def _fileno(stream: IO[str]) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _interactive(stream: IO[str]) -> bool:
    fd = _fileno(stream)
    if fd is not None:
        return os.isatty(fd)
    isatty: Any = getattr(stream, "isatty", None)
    return bool(isatty()) if callable(isatty) else False
