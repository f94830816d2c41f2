"""Where model code runs: a persistent kernel behind the `Sandbox` protocol."""

from __future__ import annotations

from typing import Any

from codeact.sandbox.base import ExecError, Execution, Sandbox, ToolCallRecord

__all__ = ["ExecError", "Execution", "Sandbox", "ToolCallRecord", "default_sandbox", "resolve_sandbox"]


def default_sandbox(**options: Any) -> Sandbox:
    """The sandbox `CodeAgent` uses when none is given."""
    from codeact.sandbox.process import ProcessSandbox

    return ProcessSandbox(**options)


def resolve_sandbox(name: str | None = None, **options: Any) -> Sandbox:
    """`"process"` (no isolation) or None for the default; for the CLI's --sandbox."""
    from codeact.errors import ConfigError

    if name in (None, "", "default"):
        return default_sandbox(**options)
    if name == "process":
        from codeact.sandbox.process import ProcessSandbox

        return ProcessSandbox(**options)
    raise ConfigError(f"unknown sandbox {name!r}; choose 'default' or 'process'")
