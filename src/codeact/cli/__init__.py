"""The `codeact` command line. Each sub-command lives in its own module and registers on `app`."""

from __future__ import annotations

import typer

__all__ = ["app", "main"]

app = typer.Typer(
    name="codeact",
    help="Agents that act by writing Python, run in a real, isolated CPython kernel.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _group() -> None:
    """Agents that act by writing Python, run in a real, isolated CPython kernel."""


def _register() -> None:
    # Imported for their side effect of adding commands to `app`.
    from codeact.cli import (
        bench,  # noqa: F401
        doctor,  # noqa: F401
        run,  # noqa: F401
        runs,  # noqa: F401
    )


def main() -> None:
    _register()
    app()
