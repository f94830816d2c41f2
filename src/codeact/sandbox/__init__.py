"""Where model code runs: a persistent kernel behind the `Sandbox` protocol.

`LocalSandbox` (isolated, the default) and `ProcessSandbox` (no isolation, chosen explicitly).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from codeact.sandbox.base import BridgeLimits, ExecError, Execution, Sandbox, ToolCallRecord

if TYPE_CHECKING:
    from codeact.sandbox.local import LocalSandbox, NetworkPolicy
    from codeact.sandbox.process import ProcessSandbox

__all__ = [
    "BridgeLimits",
    "ExecError",
    "Execution",
    "LocalSandbox",
    "NetworkPolicy",
    "ProcessSandbox",
    "Sandbox",
    "ToolCallRecord",
    "default_sandbox",
    "resolve_sandbox",
]



def default_sandbox(**options: Any) -> Sandbox:
    """The sandbox `CodeAgent` uses when none is given: the isolated `LocalSandbox`.

    Raises `IsolationUnavailable` where this machine cannot isolate; it never falls back to
    the unisolated `ProcessSandbox` on its own.
    """
    from codeact.sandbox.local import LocalSandbox

    return LocalSandbox(**options)


def resolve_sandbox(name: str | None = None, **options: Any) -> Sandbox:
    """`"local"` (isolated), `"process"` (no isolation) or None/"default" (local); for the CLI's --sandbox."""
    from codeact.errors import ConfigError

    if name in (None, "", "default"):
        return default_sandbox(**options)
    if name == "local":
        from codeact.sandbox.local import LocalSandbox

        return LocalSandbox(**options)
    if name == "process":
        from codeact.sandbox.process import ProcessSandbox

        return ProcessSandbox(**options)
    raise ConfigError(f"unknown sandbox {name!r}; choose 'default', 'local' or 'process'")


def __getattr__(name: str) -> Any:
    if name in ("LocalSandbox", "NetworkPolicy"):
        from codeact.sandbox import local

        return getattr(local, name)
    if name == "ProcessSandbox":
        from codeact.sandbox.process import ProcessSandbox

        return ProcessSandbox
    raise AttributeError(f"module 'codeact.sandbox' has no attribute {name!r}")
