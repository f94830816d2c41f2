"""`--serve-local`: llama-cpp-python's OpenAI server on the embedded model."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from codeact.bench.local_server import LocalServer


def test_command_serves_on_localhost_with_the_given_threads_and_context():
    server = LocalServer("0.5b", port=4321, n_threads=1, n_ctx=4096)
    command = server.command(Path("/models/m.gguf"))
    assert command[:3] == [sys.executable, "-m", "llama_cpp.server"]
    pairs = dict(zip(command[3::2], command[4::2]))
    assert pairs["--model"] == "/models/m.gguf"
    assert pairs["--host"] == "127.0.0.1" and pairs["--port"] == "4321"
    assert pairs["--n_threads"] == "1" and pairs["--n_ctx"] == "4096"
    assert server.model_spec == f"openai-compat:http://127.0.0.1:4321/v1#{LocalServer.alias}"


@pytest.mark.slow
def test_serves_the_embedded_model_to_a_tool_calling_agent(tmp_path):
    for module in ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    from codeact.agent.tool_calling_agent import ToolCallingAgent
    from codeact.errors import MissingExtraError
    from codeact.models.registry import resolve_model

    server = LocalServer("0.5b", n_threads=2, n_ctx=2048, log_path=tmp_path / "server.log")
    try:
        server.start()
    except MissingExtraError as exc:
        pytest.skip(str(exc))
    try:
        model = resolve_model(server.model_spec, temperature=0.0, max_tokens=64)
        agent = ToolCallingAgent(model, tool_mode="text", max_steps=2)
        result = agent.run("What is 6 times 7? Call final_answer with the number.")
        assert result.usage.prompt_tokens > 100  # a real model read a real prompt
        assert len(result.steps) >= 1
    finally:
        server.stop()
    assert server._process is None
