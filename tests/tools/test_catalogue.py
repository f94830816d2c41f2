"""Code mode: a 120-tool MCP catalogue leaves the prompt; the code finds tools with search_tools/help and
calls them, in the real LocalSandbox."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from codeact import CodeAgent
from codeact.agent.prompt import render_tools
from codeact.models import ScriptedModel
from codeact.tools.mcp import MCPClient, StdioServer
from tests._isolation import require_sandbox

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def big():
    with MCPClient(StdioServer(sys.executable, ("-m", "tests.mcp_servers.big_server"), cwd=str(ROOT), name="big")) as c:
        yield c


def test_a_large_catalogue_leaves_the_prompt(big):
    names = [t.name for t in big.tools]
    assert len(names) == 122 and names[-2:] == ["search_tools", "help"]
    prompt = render_tools({t.name: t for t in big.tools})
    assert "def search_tools(" in prompt and "def help(" in prompt and "def billing_create(" not in prompt
    assert "- big: A company's internal services" in prompt and "120 tools" in prompt
    full = "\n".join(big.tools[-1](t.name) for t in big.tools[:-2])  # each as the prompt would show it
    assert len(prompt) * 20 < len(full)  # measured: ~750 vs 37,549 characters


def test_a_small_catalogue_stays_in_the_prompt():
    with MCPClient(StdioServer(sys.executable, ("-m", "tests.mcp_servers.demo_server"), cwd=str(ROOT))) as c:
        assert "search_tools" not in [t.name for t in c.tools]
        assert "def add(" in render_tools({t.name: t for t in c.tools})


@require_sandbox()
def test_code_finds_and_calls_a_tool_in_the_sandbox(big):
    src = (
        "hits = search_tools('refund an invoice payment', limit=3)\n"
        "name = hits[0].split('(')[0]\n"
        "doc = help(name)\n"
        "final_answer([name, 'item_id' in doc, billing_create('inv-7')])"
    )
    agent = CodeAgent(ScriptedModel([f"Thought: look it up.\n```python\n{src}\n```"]), tools=big.tools)
    result = agent.run("refund invoice inv-7")
    assert result.status == "success", result
    name, documented, created = result.output
    assert name.startswith("billing_") and documented
    assert created == "billing_create [('item_id', 'inv-7'), ('limit', 20)]"
