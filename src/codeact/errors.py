"""Every error codeact raises, in one place.

    CodeactError
    ├── ConfigError            a usage mistake: bad argument, unknown model, missing extra
    │   └── MissingExtraError  an optional dependency is not installed
    ├── ModelError             the model backend failed
    │   ├── ModelConnectionError   the server could not be reached
    │   │   └── ModelTimeoutError  the server went silent: no token for `timeout` seconds
    │   └── ModelResponseError     the server answered with an error status
    ├── SandboxError           the kernel could not be started or talked to
    │   └── IsolationUnavailable   this machine cannot provide the requested isolation
    ├── ToolError              a tool is malformed, or failed on the host
    │   └── MCPToolError       an MCP tool reported an error, timed out, or its server is not running
    ├── RunLogError            the run log could not be written or read
    └── BudgetExceeded         a step, token, cost or time budget ran out (a signal, not a crash)
"""

from __future__ import annotations

__all__ = [
    "BudgetExceeded",
    "CodeactError",
    "ConfigError",
    "IsolationUnavailable",
    "MCPToolError",
    "MissingExtraError",
    "ModelConnectionError",
    "ModelError",
    "ModelResponseError",
    "ModelTimeoutError",
    "RunLogError",
    "SandboxError",
    "ToolError",
]


class CodeactError(Exception):
    """Base class of every error raised by codeact."""


class ConfigError(CodeactError):
    """The caller asked for something that cannot work as written."""


class MissingExtraError(ConfigError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, package: str, extra: str, feature: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{feature} needs the `{package}` package. Install it with: pip install 'codeact[{extra}]'"
        )


class ModelError(CodeactError):
    """The model backend failed to produce a reply."""


class ModelConnectionError(ModelError):
    """The model server could not be reached (refused, DNS, timeout)."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        self.url = url
        super().__init__(message)


class ModelTimeoutError(ModelConnectionError):
    """The model server sent nothing for longer than the client's timeout."""


class ModelResponseError(ModelError):
    """The model server answered with an error status."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        self.status_code = status_code
        super().__init__(message)


class SandboxError(CodeactError):
    """The sandboxed kernel could not be started or stopped responding."""


class IsolationUnavailable(SandboxError):
    """The machine lacks a layer the isolated sandbox needs (user namespaces, bwrap...)."""


class ToolError(CodeactError):
    """A tool definition is unusable, or a tool failed on the host."""


class MCPToolError(ToolError):
    """An MCP tool failed: the server reported an error (`isError`), timed out, or is not running."""


class RunLogError(CodeactError):
    """The run log (SQLite) could not be written or read: disk full, file locked too long..."""


class BudgetExceeded(CodeactError):
    """A run budget ran out; the run ends with this as its status, not as a crash."""

    def __init__(self, budget: str, limit: float, used: float) -> None:
        self.budget = budget
        self.limit = limit
        self.used = used
        super().__init__(f"{budget} budget exhausted: used {used:g} of {limit:g}")
