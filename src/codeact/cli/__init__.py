"""The `codeact` command line. Each sub-command lives in its own module and registers on `app`."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["app", "main"]

app = typer.Typer(
    name="codeact",
    help="Agents that act by writing Python, run in a real, isolated CPython kernel.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Help and usage errors as plain text: Rich markup mode would eat `[...]` in help strings
    # (`{"model": [input, output]}`) and in the values a user typed.
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        from codeact._version import __version__

        typer.echo(f"codeact {__version__}")
        raise typer.Exit(0)


@app.callback()
def _group(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print codeact's version and exit.")] = False,
) -> None:
    """Agents that act by writing Python, run in a real, isolated CPython kernel."""


def _register() -> None:
    # Imported for their side effect of adding commands to `app`.
    from codeact.cli import (
        batch,  # noqa: F401
        bench,  # noqa: F401
        chat,  # noqa: F401
        doctor,  # noqa: F401
        export,  # noqa: F401
        mcp,  # noqa: F401
        run,  # noqa: F401
        runs,  # noqa: F401
        serve,  # noqa: F401
    )


def main() -> None:
    _register()
    app()
