"""Agents: the step loop, the drivers around it, and what drives a run against its record
(resume, replay) or keeps its prompts small (compaction)."""

from codeact.agent.agent import Agent
from codeact.agent.code_agent import CodeAgent, replay_run
from codeact.agent.compaction import Compaction
from codeact.agent.feed import Divergence
from codeact.agent.replay import ReplayReport
from codeact.agent.tool_calling_agent import ToolCallingAgent
from codeact.runs.result import RunResult

__all__ = [
    "Agent",
    "CodeAgent",
    "Compaction",
    "Divergence",
    "ReplayReport",
    "RunResult",
    "ToolCallingAgent",
    "replay_run",
]
