"""The live view of a run on stderr: each step's thought, code, observation, tokens and seconds.

While the model thinks or the code runs, a terminal also gets a status line (spinner, step,
elapsed time, tokens so far) that moves even before the first token, and the reply growing under
it as `ModelDelta` events stream in; it is redrawn in place by `rich.live.Live` and erased when
the step's result is printed. A console that is not a terminal (a pipe, a file, `codeact show`)
gets the finished steps only.

Everything shown that is not ours goes through `_text.safe()`: a task with `[/]` or an
observation with `ESC ] 52` is shown as the characters it is.
"""

from __future__ import annotations

import reprlib
import time
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.live import Live
from rich.panel import Panel
from rich.rule import Rule
from rich.spinner import Spinner
from rich.syntax import Syntax
from rich.text import Text

from codeact.cli._text import safe, visible
from codeact.runs.events import (
    ActionParsed,
    BudgetHit,
    Event,
    ModelReplied,
    Observed,
    RunFinished,
    RunResumed,
    RunStarted,
    StepFinished,
    ToolCalled,
)

__all__ = ["LiveView"]

_TAIL_LINES = 8
"""How many of the reply's last lines the status shows while it streams."""


class LiveView:
    """Renders events as they arrive. Text only goes to the console it is given (stderr).

    Args:
        console: where to draw.
        max_observation_lines: longer observations are cut, with a count of the lines left out.
        live: draw the status line and the streaming reply; default: when `console` is a terminal.
    """

    def __init__(self, console: Console, *, max_observation_lines: int = 40, live: bool | None = None) -> None:
        self.console = console
        self.max_observation_lines = max_observation_lines
        self._status = _Status()
        self._live: Live | None = None
        self._enabled = console.is_terminal if live is None else live

    def show(self, event: Event) -> None:
        c = self.console
        if event.kind == "model_delta":  # ModelDelta(step, text, tokens)
            self._on_delta(event)
        elif isinstance(event, RunStarted):
            tools = ", ".join(event.tools) or "none"
            c.print(Text.assemble(("codeact ", "bold cyan"), safe(f"model={event.model} tools={tools} "
                                                                  f"max_steps={event.max_steps}"), style="dim"))
            c.print(Panel(safe(event.task), title="task", title_align="left", border_style="cyan"))
            self._wait(1, "thinking")
        elif isinstance(event, RunResumed):
            c.print(safe(f"resuming run {event.run_id} at step {event.from_step} "
                         f"({event.reexecuted} recorded actions re-run)", "bold yellow"))
            self._wait(event.from_step, "thinking")
        elif isinstance(event, ModelReplied):
            self._stop()
            c.print(Rule(f"step {event.step}", style="cyan", align="left"))
        elif isinstance(event, ActionParsed):
            if event.thought:
                c.print(safe(event.thought, "italic"))
            if event.code is not None:
                c.print(Syntax(visible(event.code), "python", theme="ansi_dark", line_numbers=False,
                               word_wrap=True))
                self._wait(event.step, "running code", keep_clock=False)
            if event.note:
                c.print(safe(f"({event.note})", "dim"))
        elif isinstance(event, ToolCalled):
            call = event.call
            status = f"error: {call.error}" if call.error else "ok"
            c.print(safe(f"↳ tool {call.name}({_short(call.arguments)}) {status} "
                         f"{call.duration_s * 1000:.0f} ms", "magenta"))
        elif event.kind == "approval_requested":  # ApprovalRequested: the call as data
            c.print(safe(f"? approval asked: {getattr(event, 'tool', '')}({_short(getattr(event, 'arguments', {}))})"
                         f" · {getattr(event, 'reason', '')}"[:400], "yellow"))
        elif event.kind == "approval_decided":  # ApprovalDecided: who decided what; the message is data
            c.print(safe(_decision(event), "red" if getattr(event, "verdict", "") == "deny" else "yellow"))
        elif isinstance(event, Observed):
            self._stop()
            lines = event.observation.splitlines()
            if len(lines) > self.max_observation_lines:
                hidden = len(lines) - self.max_observation_lines
                lines = lines[: self.max_observation_lines] + [f"... ({hidden} more lines)"]
            style = "red" if event.error else "green"
            c.print(Panel(safe("\n".join(lines)), title="observation", title_align="left", border_style=style))
        elif isinstance(event, StepFinished):
            s = event.step
            c.print(Text(f"tokens {s.usage.prompt_tokens:,} in / {s.usage.completion_tokens:,} out · "
                         f"model {s.model_seconds:.1f} s · code {s.exec_seconds:.2f} s", style="dim"))
            self._wait(s.index + 1, "thinking")
        elif event.kind == "log_note":  # LogNote: the log could not keep something whole
            c.print(safe(f"log: {getattr(event, 'message', '')}", "yellow"))
        elif event.kind == "plan_updated":  # PlanUpdated: the model's plan, shown as data
            c.print(Panel(safe(getattr(event, "text", "").strip()), title="plan", title_align="left",
                          border_style="blue"))
        elif event.kind == "files_changed":  # FilesChanged: names the model's code chose, shown as data
            files = getattr(event, "files", ())
            more = getattr(event, "more", 0)
            shown = ", ".join(f"{f.change} {f.path} ({f.size:,} bytes)" for f in files[:10])
            rest = len(files) - 10 + more
            c.print(safe(f"files: {shown}" + (f" and {rest:,} more" if rest > 0 else ""), "dim"))
        elif event.kind == "images_shown":  # ImagesShown: descriptions only (from a log: data), never bytes
            listed = [f"[image: {str(text)[:80]}]" for text in getattr(event, "shown", ())]
            more = f" and {len(listed) - 10} more" if len(listed) > 10 else ""
            c.print(safe(" ".join(listed[:10]) + more, "dim"))
        elif isinstance(event, BudgetHit):
            self._stop()
            c.print(safe(event.message, "bold red"))
        elif isinstance(event, RunFinished):
            self.close()
            style = "bold green" if event.status == "success" else "bold red"
            summary = Text.assemble(safe(event.status, style),
                                    f" · {event.steps} steps · {event.usage.total_tokens:,} tokens · "
                                    f"{event.seconds:.1f} s", style="dim")
            parts: list[Any] = [summary]
            if event.error:
                parts.append(safe(event.error, "red"))
            c.print(Group(*parts))

    def pause(self) -> None:
        """Erase the status line until the next event (a prompt is about to be shown)."""
        self._stop()

    def close(self) -> None:
        """Erase the status line and stop redrawing it (call it when the run ends in any way)."""
        self._stop()
        self._enabled = False

    # -- the status line ------------------------------------------------------------------------
    def _wait(self, step: int, phase: str, *, keep_clock: bool = True) -> None:
        """Show the status for `step` until the next printed result."""
        if not self._enabled:
            return
        status = self._status
        if not keep_clock or status.step != step or self._live is None:
            status.started = time.monotonic()
        status.step, status.phase, status.reply, status.tokens = step, phase, "", 0
        if self._live is None:
            self._live = Live(status, console=self.console, transient=True, refresh_per_second=8,
                              redirect_stdout=False, redirect_stderr=False)
            self._live.start()

    def _on_delta(self, event: Any) -> None:
        step = int(getattr(event, "step", self._status.step))
        if self._live is None or self._status.step != step:
            self._wait(step, "thinking")
        if self._live is None:
            return
        self._status.phase = "writing"
        self._status.reply = _tail(self._status.reply + str(getattr(event, "text", "")))
        self._status.tokens = int(getattr(event, "tokens", 0) or 0)

    def _stop(self) -> None:
        if self._live is not None:
            live, self._live = self._live, None
            live.stop()


class _Status:
    """The status line and the reply so far; rendered again on every refresh, so the clock moves."""

    def __init__(self) -> None:
        self.step = 0
        self.phase = ""
        self.started = time.monotonic()
        self.tokens = 0
        self.reply = ""
        self._spinner = Spinner("dots", style="cyan")

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        elapsed = time.monotonic() - self.started
        status = Text.assemble((f"step {self.step}", "bold cyan"), f" · {self.phase} · {elapsed:.1f} s",
                               f" · {self.tokens:,} tokens" if self.tokens else "", style="dim")
        self._spinner.update(text=status)
        yield self._spinner
        if self.reply:
            # Short of the edge: a full line leaves the terminal waiting to wrap, and the `^C` it
            # echoes on Ctrl-C then lands on a new line, off the region Live erases.
            width = max(options.max_width - 3, 1)
            for line in visible(self.reply).splitlines()[-_TAIL_LINES:]:
                text = Text(line, style="dim", no_wrap=True)
                text.truncate(width, overflow="ellipsis")
                yield text


def _tail(text: str, limit: int = 8_000) -> str:
    """The end of a growing reply: the status shows its last lines, so keep memory flat."""
    return text if len(text) <= limit else text[-limit:]


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 60, 60


def _decision(event: Any) -> str:
    """One line for an ApprovalDecided event, bounded."""
    verdict, tool = str(getattr(event, "verdict", "")), str(getattr(event, "tool", ""))
    by = f" by {getattr(event, 'by', '')}" if getattr(event, "by", "") else ""
    if getattr(event, "timed_out", False):
        text = f"✗ {tool}: no decision in time, denied"
    elif verdict == "approve":
        text = f"✓ {tool} approved{by}"
    elif verdict == "edit":
        text = f"✓ {tool} approved{by} with edited arguments ({_short(getattr(event, 'arguments', None) or {})})"
    else:
        message = str(getattr(event, "message", ""))
        text = f"✗ {tool} denied{by}" + (f": {message}" if message else "")
    return text[:1_000]


def _short(arguments: Any, limit: int = 80) -> str:
    """Tool arguments in one bounded line, however large or deep the values are."""
    if not isinstance(arguments, dict):
        return _REPR.repr(arguments)[:limit]
    text = ", ".join(f"{k}={_REPR.repr(v)}" for k, v in list(arguments.items())[:20])
    return text if len(text) <= limit else text[: limit - 1] + "…"
