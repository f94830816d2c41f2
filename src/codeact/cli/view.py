"""The live view of a run on stderr: each step's thought, code, observation, tokens and seconds."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.rule import Rule
from rich.syntax import Syntax
from rich.text import Text

from codeact.runs.events import (
    ActionParsed,
    Event,
    ModelReplied,
    Observed,
    RunFinished,
    RunStarted,
    StepFinished,
    ToolCalled,
)

__all__ = ["LiveView"]


class LiveView:
    """Renders events as they arrive. Text only goes to the console it is given (stderr)."""

    def __init__(self, console: Console, *, max_observation_lines: int = 40) -> None:
        self.console = console
        self.max_observation_lines = max_observation_lines

    def show(self, event: Event) -> None:
        c = self.console
        if isinstance(event, RunStarted):
            tools = ", ".join(event.tools) or "none"
            c.print(Text.assemble(("codeact ", "bold cyan"), f"model={event.model} tools={tools} "
                                  f"max_steps={event.max_steps}", style="dim"))
            c.print(Panel(event.task, title="task", title_align="left", border_style="cyan"))
        elif isinstance(event, ModelReplied):
            c.print(Rule(f"step {event.step}", style="cyan", align="left"))
        elif isinstance(event, ActionParsed):
            if event.thought:
                c.print(Text(event.thought, style="italic"))
            if event.code is not None:
                c.print(Syntax(event.code, "python", theme="ansi_dark", line_numbers=False, word_wrap=True))
            if event.note:
                c.print(Text(f"({event.note})", style="dim"))
        elif isinstance(event, ToolCalled):
            call = event.call
            status = f"error: {call.error}" if call.error else "ok"
            c.print(Text(f"↳ tool {call.name}({_short(call.arguments)}) {status} "
                         f"{call.duration_s * 1000:.0f} ms", style="magenta"))
        elif isinstance(event, Observed):
            lines = event.observation.splitlines()
            if len(lines) > self.max_observation_lines:
                hidden = len(lines) - self.max_observation_lines
                lines = lines[: self.max_observation_lines] + [f"... ({hidden} more lines)"]
            style = "red" if event.error else "green"
            c.print(Panel(Text("\n".join(lines)), title="observation", title_align="left", border_style=style))
        elif isinstance(event, StepFinished):
            s = event.step
            c.print(Text(f"tokens {s.usage.prompt_tokens:,} in / {s.usage.completion_tokens:,} out · "
                         f"model {s.model_seconds:.1f} s · code {s.exec_seconds:.2f} s", style="dim"))
        elif isinstance(event, RunFinished):
            style = "bold green" if event.status == "success" else "bold red"
            summary = Text.assemble((f"{event.status}", style),
                                    f" · {event.steps} steps · {event.usage.total_tokens:,} tokens · "
                                    f"{event.seconds:.1f} s", style="dim")
            parts: list[Any] = [summary]
            if event.error:
                parts.append(Text(event.error, style="red"))
            c.print(Group(*parts))


def _short(arguments: dict[str, Any], limit: int = 80) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
    return text if len(text) <= limit else text[: limit - 1] + "…"
