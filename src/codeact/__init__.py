"""codeact: agents that act by writing Python, run in a real, isolated CPython kernel."""

from codeact._version import __version__
from codeact.agent import Agent, CodeAgent, RunResult, ToolCallingAgent
from codeact.errors import CodeactError, ConfigError, ModelError, SandboxError, ToolError
from codeact.runs.events import Event, Step
from codeact.tools import Tool, tool

__all__ = [
    "Agent",
    "CodeAgent",
    "CodeactError",
    "ConfigError",
    "Event",
    "ModelError",
    "RunResult",
    "SandboxError",
    "Step",
    "Tool",
    "ToolCallingAgent",
    "ToolError",
    "__version__",
    "tool",
]
