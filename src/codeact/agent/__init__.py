"""Agents: the step loop and the agent kinds built on it."""

from codeact.agent.agent import Agent
from codeact.agent.code_agent import CodeAgent
from codeact.agent.result import RunResult
from codeact.agent.tool_calling_agent import ToolCallingAgent

__all__ = ["Agent", "CodeAgent", "RunResult", "ToolCallingAgent"]
