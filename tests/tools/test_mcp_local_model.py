"""End to end: the embedded 0.5B model writes code that calls a tool of a real MCP server (stdio),
run in the real default sandbox. Marked and skipped like tests/test_e2e_local.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from codeact import CodeAgent
from codeact.tools.mcp import MCPClient, StdioServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[2]


def test_local_model_calls_an_mcp_tool(small_model):
    server = StdioServer(sys.executable, ("-m", "tests.mcp_servers.demo_server"), cwd=str(ROOT))
    with MCPClient(server) as client:
        add = next(t for t in client.tools if t.name == "add")
        result = CodeAgent(small_model, tools=[add], max_steps=4).run("What is 1234 plus 4321? Use the add tool.")
    assert result.status == "success", result.steps
    assert int(result.output) == 5555
    assert any(c.name == "add" for s in result.steps for c in s.tool_calls)
