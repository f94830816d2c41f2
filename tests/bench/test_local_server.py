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


# -- the real server: counting, settling, and the JSON agent on multi-step, multi-tool tasks -------


def _require_server_extras() -> None:
    for module in ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    _require_server_extras()
    from codeact.errors import MissingExtraError

    server = LocalServer("0.5b", n_threads=2, n_ctx=4096, log_path=tmp_path_factory.mktemp("srv") / "server.log",
                         settle_timeout=2.0)
    try:
        server.start()
    except MissingExtraError as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.mark.slow
def test_count_prompt_matches_the_servers_own_count(served):
    from codeact.agent.tool_calling_agent import FINAL_ANSWER_SPEC
    from codeact.bench.shop import TOOLS
    from codeact.models.base import Message, ToolCall
    from codeact.models.openai_compat import OpenAICompatible
    from codeact.models.openai_wire import to_openai_messages, to_openai_tools

    messages = [Message("system", "You help."), Message("user", "Stock of KB-100?"),
                Message("assistant", "", (ToolCall("c1", "get_stock", {"sku": "KB-100"}),)),
                Message("tool", '{"berlin": 4}', tool_call_id="c1")]
    specs = [t.spec() for t in TOOLS] + [FINAL_ANSWER_SPEC]
    exact = OpenAICompatible("q", base_url=served.url, max_tokens=1, stream_replies=False)

    for tools in (None, specs):
        told = exact.complete(messages, tools=tools).usage.prompt_tokens
        assert served.count_prompt(to_openai_messages(messages), to_openai_tools(tools) if tools else None) == told


@pytest.mark.slow
def test_settle_restarts_a_server_still_busy_with_an_abandoned_reply(served):
    import json
    import threading
    import urllib.request

    body = json.dumps({"model": "q", "max_tokens": 600, "temperature": 0,
                       "messages": [{"role": "user", "content": "Count from 1 to 500, one number per line."}]})
    request = urllib.request.Request(served.url + "/chat/completions", data=body.encode(),
                                     headers={"Content-Type": "application/json"})

    def abandon():
        try:
            urllib.request.urlopen(request, timeout=1).read()
        except OSError:
            pass  # the client gave up; the server keeps generating a non-streamed reply

    thread = threading.Thread(target=abandon)
    thread.start()
    thread.join()
    before, restarts = served.pid, served.restarts

    served.settle()

    assert served.restarts == restarts + 1 and served.pid != before and served.pid is not None
    with urllib.request.urlopen(served.url + "/models", timeout=5) as response:
        assert response.status == 200
    served.settle()  # idle now: nothing to wait for, no restart
    assert served.restarts == restarts + 1


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["native", "text"])
def test_the_json_agent_runs_multi_step_multi_tool_tasks_on_llama_cpps_server(served, mode):
    from codeact.agent.tool_calling_agent import ToolCallingAgent
    from codeact.bench.shop import TOOLS
    from codeact.models.openai_compat import OpenAICompatible

    model = OpenAICompatible(LocalServer.alias, base_url=served.url, temperature=0.0, max_tokens=200,
                             count_prompt=served.count_prompt)
    # A 0.5B model may answer at once; the check sends a non-number back, so there is a next step.
    must_be_a_count = [lambda answer: isinstance(answer, int) or "Answer with the Berlin stock, a number."]
    agent = ToolCallingAgent(model, TOOLS, tool_mode=mode, max_steps=4, store=False,
                             final_answer_checks=must_be_a_count)

    result = agent.run("Find the SKU of the 'Gaming Mouse Pro' with search_products, then call get_stock "
                       "with that SKU, then give the Berlin stock as the final answer.")

    assert result.status in ("success", "max_steps"), result.error  # never model_error, never a crash
    assert len(result.steps) >= 2  # the second request carried the first step's turns
    if mode == "native":
        assert result.steps[0].tool_calls  # ... including an assistant turn with tool calls
    assert result.usage.prompt_tokens > 300
