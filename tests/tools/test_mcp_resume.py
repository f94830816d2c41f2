"""`codeact resume` of a run made with `--mcp`: the servers are recorded (no secret values) and opened again."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from codeact.errors import ConfigError
from codeact.runs.store import RunStore
from codeact.tools.mcp import HTTPServer, StdioServer, reopen_servers, server_specs
from codeact.tools.mcp_client import server_from_spec
from tests._isolation import require_sandbox
from tests.cli._helpers import REPO, codeact, fenced
from tests.servers.chat_server import ChatServer, chat, error

SERVER = f"{sys.executable} -m tests.mcp_servers.demo_server"


def test_a_spec_keeps_names_and_never_values_and_opens_again_from_the_environment() -> None:
    stdio = StdioServer(sys.executable, ("-m", "srv"), {"API_TOKEN": "s3cret-value"}, name="demo", timeout=5)
    http = HTTPServer("https://bob:hunter2@example.com/mcp", {"Authorization": "Bearer s3cret-value"})
    specs = server_specs(stdio, http, "npx -y some-server")
    text = json.dumps(specs)
    assert "s3cret-value" not in text and "hunter2" not in text
    assert specs[0]["env"] == ["API_TOKEN"] and specs[1]["headers"] == ["Authorization"]
    assert specs[2] == StdioServer("npx", ("-y", "some-server")).spec()
    again = server_from_spec(specs[0], environ={"API_TOKEN": "from-env"})
    assert again == StdioServer(sys.executable, ("-m", "srv"), {"API_TOKEN": "from-env"}, name="demo", timeout=5)
    with pytest.raises(ConfigError, match="API_TOKEN, whose values are not stored"):
        server_from_spec(specs[0], environ={})
    with pytest.raises(ConfigError, match="headers Authorization, whose values are not stored"):
        server_from_spec(specs[1])


def test_reopening_a_server_that_cannot_start_names_it() -> None:
    spec = StdioServer(sys.executable, ("-c", "import sys; sys.exit(3)"), name="gone").spec()
    with pytest.raises(ConfigError, match="run r1 used MCP tools, but the server cannot be started again"):
        reopen_servers([spec], run_id="r1")


def _run_id(stderr: str) -> str:
    found = re.search(r"codeact resume ([0-9a-f]{12})", stderr)
    assert found, stderr
    return found.group(1)


def _meta(home: Path, run_id: str) -> dict:
    (db,) = [p for p in home.rglob("*.db") if p.name != "weights.db"]
    with RunStore(db) as store:
        return store.get(run_id).meta


@require_sandbox()
def test_resume_connects_the_runs_mcp_servers_again(tmp_path: Path) -> None:
    first = [chat(fenced("x = add(2, b=3)\nprint(x)")), error(400, "context too long")]
    with ChatServer(first) as model:
        proc = codeact(tmp_path, "run", "add with mcp", "--model", f"openai-compat:{model.url}#m", "--mcp", SERVER,
                       "--quiet")
    assert proc.returncode == 1 and "model_error" in proc.stderr, proc.stderr
    run_id = _run_id(proc.stderr)
    assert _meta(tmp_path, run_id)["mcp_servers"] == server_specs(SERVER)

    with ChatServer([chat(fenced("final_answer(add(x, b=10))"))]) as model:
        again = codeact(tmp_path, "resume", run_id, "--model", f"openai-compat:{model.url}#m", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout.strip().splitlines()[-1])["output"] == 15  # x = 5 from before, add called live


@require_sandbox()
def test_resume_says_clearly_when_a_recorded_server_cannot_be_started(tmp_path: Path) -> None:
    script = tmp_path / "server.py"
    script.write_text(f"import runpy, sys\nsys.path.insert(0, {str(REPO)!r})\n"
                      "runpy.run_module('tests.mcp_servers.demo_server', run_name='__main__')\n")
    first = [chat(fenced("print(add(1))")), error(400, "context too long")]
    with ChatServer(first) as model:
        proc = codeact(tmp_path, "run", "add", "--model", f"openai-compat:{model.url}#m",
                       "--mcp", f"{sys.executable} {script}", "--quiet")
    assert proc.returncode == 1, proc.stderr
    run_id = _run_id(proc.stderr)
    script.unlink()  # the server is gone
    again = codeact(tmp_path, "resume", run_id, "--model", "openai-compat:http://127.0.0.1:9/v1#m")
    assert again.returncode == 2, again.stderr
    assert f"run {run_id} used MCP tools, but the server cannot be started again" in again.stderr
    assert "Traceback" not in again.stderr
