"""Agents: the step loop and the agent kinds built on it."""

from codeact.agent.agent import Agent
from codeact.agent.code_agent import CodeAgent
from codeact.agent.result import RunResult

__all__ = ["Agent", "CodeAgent", "RunResult"]
