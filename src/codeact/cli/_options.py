"""Options several commands share, checked where they are parsed.

A bad value (`--timeout -1`, `--sandbox docker`, an empty task) is a usage error: click prints it
with the command's usage and exits 2, before anything starts. Errors found later, while building
the agent, go through `usage_errors()`, which also exits 2; errors during a run exit 1.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from codeact.cli._text import safe
from codeact.errors import CodeactError

__all__ = [
    "SANDBOXES",
    "MaxCostOption",
    "MaxSecondsOption",
    "MaxTokensOption",
    "PricesOption",
    "StoreOption",
    "print_error",
    "usage_errors",
]

SANDBOXES = ("default", "local", "process")


def positive(value: float | None) -> float | None:
    """Callback: None or a number above zero."""
    if value is not None and not value > 0:
        raise typer.BadParameter(f"must be more than 0, got {value:g}")
    return value


def sandbox_name(value: str | None) -> str | None:
    """Callback: one of the sandboxes `resolve_sandbox` knows."""
    if value is not None and value not in SANDBOXES:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(SANDBOXES)}")
    return value


def task_text(value: str) -> str:
    """Callback: a task with something in it."""
    if not value.strip():
        raise typer.BadParameter("the task is empty; say what the agent should do")
    return value


StoreOption = Annotated[str | None, typer.Option(
    "--store", metavar="FILE", help="The run log: a SQLite file or sqlite:/// URL (default: "
    "$CODEACT_HOME/runs.db or the user data dir).")]
MaxTokensOption = Annotated[int | None, typer.Option(
    "--max-tokens", callback=positive, help="Budget: prompt plus completion tokens for the whole run.")]
MaxSecondsOption = Annotated[float | None, typer.Option(
    "--max-seconds", callback=positive, help="Budget: wall-clock seconds for the whole run.")]
MaxCostOption = Annotated[float | None, typer.Option(
    "--max-cost", callback=positive, help="Budget: dollars for the whole run (needs a known price, "
    "or --prices).")]
PricesOption = Annotated[str | None, typer.Option(
    "--prices", metavar="FILE.json", help='Model prices: {"model": [input, output]} in dollars per '
    "million tokens, over the built-in ones.")]


def print_error(console: Console, exc: BaseException | str, label: str = "error") -> None:
    """`label: message` on one line; the message is data, shown as the characters it is."""
    console.print(Text.assemble((f"{label}:", "bold red"), " ", safe(exc)))


class usage_errors:
    """Print a CodeactError raised while setting up as one line and exit 2, instead of a traceback."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: Any) -> None:
        if isinstance(exc, CodeactError):
            print_error(self.console, exc)
            raise typer.Exit(2)
