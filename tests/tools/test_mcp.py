"""MCP servers as host tools, against real MCP servers (tests/mcp_servers/demo_server.py, written with the
`mcp` SDK) over stdio and streamable HTTP, called from model code in the real LocalSandbox."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codeact import CodeAgent
from codeact.agent.prompt import render_tools
from codeact.models import ScriptedModel
from codeact.tools.mcp import HTTPServer, MCPClient, MCPToolError, StdioServer
from codeact.tools.mcp_client import server_from_text
from tests._isolation import require_sandbox

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-mcp-value-4711"


def stdio_server(**kwargs) -> StdioServer:
    return StdioServer(sys.executable, ("-m", "tests.mcp_servers.demo_server"), cwd=str(ROOT), **kwargs)


def code(src: str) -> str:
    return f"Thought: use the tool.\n```python\n{src}\n```"


@pytest.fixture(scope="module")
def stdio_client():
    with MCPClient(stdio_server(env={"DEMO_TOKEN": SECRET})) as client:
        yield client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_http(port: int) -> subprocess.Popen:
    """The demo server over streamable HTTP on 127.0.0.1:port, once it accepts connections."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.mcp_servers.demo_server", "http", str(port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    return proc


@pytest.fixture(scope="module")
def http_url():
    port = free_port()
    proc = start_http(port)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.kill()
        proc.wait()


def test_stubs_are_typed_from_the_schemas(stdio_client):
    tools = {t.name: t for t in stdio_client.tools}
    assert tools["add"].python_signature() == "add(a: int, b: int = 2) -> int"
    assert tools["greet"].python_signature() == "greet(name: str, tone: Literal['warm', 'cold'] = 'warm') -> str"
    assert tools["where"].python_signature() == "where(address: Address) -> dict[str, str]"
    prompt = render_tools(tools)
    assert "class Address(TypedDict):" in prompt and "city: str" in prompt
    assert SECRET not in prompt


def test_server_from_text_reads_urls_and_command_lines():
    assert server_from_text("http://127.0.0.1:9/mcp") == HTTPServer("http://127.0.0.1:9/mcp")
    assert server_from_text("npx -y 'some server'") == StdioServer("npx", ("-y", "some server"))


@require_sandbox()
def test_model_code_calls_stdio_mcp_tools_in_the_sandbox(stdio_client, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-host-only-0123456789abcdef")  # the host's: not the server's
    src = (
        "total = add(40)\n"
        "place = where({'city': 'Rome', 'zip': '00100'})\n"
        "try:\n    fail('no reason')\nexcept Exception as exc:\n    caught = str(exc)\n"
        "token = env_value('DEMO_TOKEN')\n"
        "final_answer({'total': total, 'place': place, 'caught': caught, 'greet': greet('Ada', tone='cold'),\n"
        "              'token_len': len(token), 'host_key': env_value('OPENAI_API_KEY'), 'slow': slow(2)})"
    )
    agent = CodeAgent(ScriptedModel([code(src)]), tools=stdio_client.tools)
    result = agent.run("use the MCP tools")
    assert result.status == "success", result
    out = result.output
    assert out["total"] == 42 and out["place"] == {"where": "Rome (00100)"} and out["greet"] == "Hi, Ada"
    assert "failed because no reason" in out["caught"] and "MCPToolError" in out["caught"]
    assert out["token_len"] == len(SECRET)  # the server got its explicit env...
    assert out["host_key"] == ""  # ...and not the host's environment
    assert out["slow"] == "done 2"
    assert ("slow", 2.0, 2.0, "step 2") in stdio_client.connections[0].progress
    log = json.dumps(agent.store.raw_events(result.run_id))
    assert '"name": "env_value"' in log or "env_value" in log
    assert SECRET not in log  # the env value the server holds is redacted from the log


@require_sandbox()
def test_http_server_with_headers_from_model_code(http_url):
    with MCPClient(HTTPServer(http_url, headers={"Authorization": f"Bearer {SECRET}"}, prefix="web_")) as client:
        names = {t.name for t in client.tools}
        assert {"web_add", "web_greet"} <= names
        agent = CodeAgent(ScriptedModel([code("final_answer(web_add(1, b=41) + len(web_greet('Bo')))")]), tools=client.tools)
        result = agent.run("add over http")
        assert result.output == 42 + len("Hello, Bo")
        assert SECRET not in json.dumps(agent.store.raw_events(result.run_id))


def test_a_dead_stdio_server_is_a_clear_error_then_restarts():
    with MCPClient(stdio_server()) as client:
        tools = {t.name: t for t in client.tools}
        with pytest.raises(MCPToolError, match="server stopped.*started again on the next call"):
            tools["die"]()
        assert tools["add"](2, 3) == 5
        assert client.connections[0].restarts == 1


def test_a_call_past_its_timeout_is_a_clear_error():
    with MCPClient(stdio_server(timeout=0.5)) as client:
        tools = {t.name: t for t in client.tools}
        with pytest.raises(MCPToolError, match="did not answer within 0.5 s"):
            tools["sleep_for"](5)


def test_an_unreachable_server_says_so():
    with pytest.raises(MCPToolError, match="cannot connect to MCP server"):
        MCPClient(StdioServer(sys.executable, ("-c", "import sys; sys.stderr.write('boom'); sys.exit(2)"))).open()


@require_sandbox()
def test_cli_run_with_mcp_servers(http_url, tmp_path):
    from tests.cli._helpers import codeact
    from tests.servers.chat_server import ChatServer, chat

    src = "final_answer(add(40, b=1) * 10 + add_2(1, b=1))"  # the second server's `add` is `add_2`
    with ChatServer([chat(code(src))]) as model:
        proc = codeact(tmp_path, "run", "use mcp", "--model", f"openai-compat:{model.url}#m",
                       "--mcp", f"{sys.executable} -m tests.mcp_servers.demo_server", "--mcp", http_url, "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    assert data["output"] == 412


def test_cli_run_with_an_unreachable_mcp_server_is_a_usage_error(tmp_path):
    from tests.cli._helpers import codeact

    proc = codeact(tmp_path, "run", "hi", "--model", "openai-compat:http://127.0.0.1:9/v1#m",
                   "--mcp", "http://127.0.0.1:9/mcp")
    assert proc.returncode == 2 and "cannot connect to MCP server" in proc.stderr, proc.stderr


def test_a_dead_http_server_is_a_clear_error_then_reconnects():
    port = free_port()
    proc = start_http(port)
    try:
        with MCPClient(HTTPServer(f"http://127.0.0.1:{port}/mcp", timeout=10)) as client:
            add = next(t for t in client.tools if t.name == "add")
            assert add(1) == 3
            proc.kill()
            proc.wait()
            with pytest.raises(MCPToolError, match="server stopped.*reconnected on the next call"):
                add(1)
            proc = start_http(port)
            assert add(2) == 4
            assert client.connections[0].restarts == 1
    finally:
        proc.kill()
        proc.wait()


def test_a_stdio_server_dies_with_a_killed_host(tmp_path):
    marker = tmp_path / "pid"
    # A "server" that never answers and ignores its stdin: only the parent-death signal stops it.
    server = f"import os, time; open({str(marker)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
    host_code = (
        "import sys\nfrom codeact.tools.mcp import MCPClient, StdioServer\n"
        f"MCPClient(StdioServer(sys.executable, ('-c', {server!r}))).open()\n"
    )
    host = subprocess.Popen([sys.executable, "-c", host_code], cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while not (marker.exists() and marker.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        pid = int(marker.read_text())
    finally:
        host.kill()
        host.wait()
    deadline = time.monotonic() + 10
    state = ""
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0]
        except (FileNotFoundError, IndexError):
            state = "gone"
        if state in ("gone", "Z", "X"):
            break
        time.sleep(0.05)
    if state not in ("gone", "Z", "X"):
        os.kill(pid, signal.SIGKILL)
    assert state in ("gone", "Z", "X"), f"the server outlived its host (state {state})"


def test_mcp_tool_error_lives_in_errors_and_the_old_import_paths_still_work() -> None:
    from codeact import errors
    from codeact.tools import mcp, mcp_client

    assert mcp.MCPToolError is mcp_client.MCPToolError is errors.MCPToolError
    assert issubclass(errors.MCPToolError, errors.ToolError) and "MCPToolError" in errors.__all__
