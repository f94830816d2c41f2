"""`codeact mcp serve` driven by the `mcp` SDK's own client, over stdio and streamable HTTP, with the
real LocalSandbox behind `python` and `run_task`, and a real HTTP model server behind `run_task`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

from tests._isolation import require_sandbox
from tests.servers.chat_server import ChatServer, chat

REPO = Path(__file__).resolve().parents[1]
pytestmark = require_sandbox()


def fenced(code: str) -> str:
    return f"Thought: go.\n```python\n{code}\n```"


def serve_args(model_url: str, store: Path, *extra: str) -> list[str]:
    return ["-m", "codeact", "mcp", "serve", "--model", f"openai-compat:{model_url}#m", "--store", str(store), *extra]


def data(result) -> object:
    assert not result.is_error, result
    if result.structured_content is not None:
        content = result.structured_content
        return content["result"] if list(content) == ["result"] else content
    return json.loads(result.content[0].text)


async def exercise(target, model: ChatServer) -> dict:
    seen: dict = {"progress": []}

    async def progress(value, total, message):
        seen["progress"].append((value, message))

    async with Client(target) as first, Client(target) as second:
        assert {t.name for t in (await first.list_tools()).tools} >= {"run_task", "python", "list_runs", "get_run"}
        session = data(await first.call_tool("python", {"code": "x = 21"}))["session"]
        seen["first"] = data(await first.call_tool("python", {"code": "x * 2", "session": session}))
        seen["second"] = data(await second.call_tool("python", {"code": "x"}))
        model.push(chat(fenced("y = 6 * 7\nprint(y)")), chat(fenced("final_answer(y)")))
        seen["run"] = data(await first.call_tool("run_task", {"task": "answer 42"}, progress_callback=progress))
        seen["runs"] = data(await first.call_tool("list_runs", {"limit": 5}))
        seen["get"] = data(await first.call_tool("get_run", {"run_id": seen["run"]["run_id"]}))
    return seen


def check(seen: dict) -> None:
    assert seen["first"]["result"] == "42"
    assert "NameError" in seen["second"]["error"]  # another client has its own session
    assert seen["run"]["answer"] == 42 and seen["run"]["status"] == "success"
    assert [m for _, m in seen["progress"]] == ["step 1", "step 2"]
    assert seen["run"]["run_id"] in [r["id"] for r in seen["runs"]]
    assert seen["get"]["output"] == 42 and "final_answer(y)" in seen["get"]["code"][1]


def test_serve_over_stdio(tmp_path):
    env = {"PYTHONPATH": str(REPO), "CODEACT_HOME": str(tmp_path), "PATH": os.environ.get("PATH", "")}
    with ChatServer([]) as model:
        params = StdioServerParameters(command=sys.executable, args=serve_args(model.url, tmp_path / "runs.db"),
                                       env=env, cwd=str(REPO))
        seen = anyio.run(exercise, params, model)
    check(seen)


def test_serve_over_streamable_http(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO), "CODEACT_HOME": str(tmp_path)}
    with ChatServer([]) as model:
        proc = subprocess.Popen([sys.executable, *serve_args(model.url, tmp_path / "runs.db", "--transport", "http",
                                                             "--port", str(port))],
                                cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            seen = anyio.run(exercise, f"http://127.0.0.1:{port}/mcp", model)
        finally:
            proc.terminate()
            proc.wait(10)
    check(seen)
