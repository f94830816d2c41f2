"""The smolagents configs, run through smolagents itself against a real chat server (skipped without it)."""

from __future__ import annotations

import json

import pytest

from codeact.bench.model import BenchModel
from codeact.bench.shop import get_stock
from codeact.bench.tasks import Task
from codeact.errors import ConfigError
from tests.servers.chat_server import ChatServer, chat

smolagents = pytest.importorskip("smolagents")

from codeact.bench._smolagents import run_smolagents, to_smolagents_tool  # noqa: E402 - after the importorskip

TASK = Task("s", "How many KB-100 keyboards are in Berlin?", 4)


def test_our_tools_become_valid_smolagents_tools_that_call_ours():
    wrapped = to_smolagents_tool(get_stock)
    assert wrapped.name == "get_stock"
    assert wrapped.inputs["sku"]["type"] == "string"
    assert wrapped.output_type == "object"
    assert wrapped(sku="KB-100") == {"berlin": 4, "austin": 12, "osaka": 0}


def test_smolagents_tool_calling_agent_runs_our_tools_over_http():
    replies = [
        chat(None, tool_calls=[("c1", "get_stock", json.dumps({"sku": "KB-100"}))], usage=(40, 6)),
        chat(None, tool_calls=[("c2", "final_answer", json.dumps({"answer": 4}))], usage=(60, 5)),
    ]
    with ChatServer(replies) as server:
        outcome = run_smolagents("json", TASK, {"get_stock": get_stock},
                                 BenchModel(f"openai-compat:{server.url}#m", max_tokens=321), max_steps=4)
        first = next(r.json for r in server.requests if r.method == "POST")
    assert outcome.answered and outcome.output == 4 and outcome.status == "success"
    assert outcome.steps == 2
    assert (outcome.prompt_tokens, outcome.completion_tokens) == (100, 11)
    assert first["temperature"] == 0.0
    assert first["max_tokens"] == 321  # the same cap as codeact's configs
    assert {t["function"]["name"] for t in first["tools"]} == {"get_stock", "final_answer"}


def test_smolagents_code_agent_runs_code_with_our_tools_over_http():
    code = "Thought: look it up.\n<code>\nstock = get_stock(sku='KB-100')\nfinal_answer(stock['berlin'])\n</code>"
    with ChatServer([chat(code, usage=(500, 30))]) as server:
        outcome = run_smolagents("code", TASK, {"get_stock": get_stock},
                                 BenchModel(f"openai-compat:{server.url}#m"), max_steps=4)
    assert outcome.output == 4 and outcome.steps == 1 and outcome.prompt_tokens == 500


def test_peers_need_an_openai_compatible_model():
    with pytest.raises(ConfigError, match="--serve-local"):
        BenchModel("local").openai_endpoint()
