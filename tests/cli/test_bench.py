"""`codeact bench` as a user runs it: a subprocess, a real HTTP model server, a task file."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from codeact.cli.bench import _positionals
from codeact.errors import ConfigError
from tests.bench.test_runner import arithmetic
from tests.servers.chat_server import ChatServer

REPO = Path(__file__).resolve().parents[2]


def codeact(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "120"}
    return subprocess.run([sys.executable, "-m", "codeact", *args], check=False, capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=REPO)


def test_bench_writes_a_table_and_reports_and_resumes(tmp_path):
    tasks = tmp_path / "arith.jsonl"
    tasks.write_text("\n".join(json.dumps(t) for t in [
        {"id": "a", "question": "What is 2 + 3?", "answer": 5},
        {"id": "b", "question": "What is 1 + 1?", "answer": 3, "checker": "exact"},
    ]) + "\n")
    out = tmp_path / "out"
    with ChatServer(default=arithmetic) as server:
        args = ["bench", str(tasks), "--model", f"openai-compat:{server.url}#m", "--agents",
                "codeact-json,no-agent", "--out", str(out), "--concurrency", "2"]
        first = codeact(*args)
        posts = sum(r.method == "POST" for r in server.requests)
        second = codeact(*args)
        assert sum(r.method == "POST" for r in server.requests) == posts  # all resumed
    assert first.returncode == 0, first.stderr
    assert "| codeact-json | 1/2 | 0 | 50% (" in first.stdout
    assert "| no-agent | 1/2 |" in first.stdout
    assert second.returncode == 0 and second.stdout == first.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["taskset"] == "arith" and report["tasks"] == 2
    assert report["agents"]["codeact-json"]["errors"] == {"wrong_answer": 1}
    assert len((out / "results.jsonl").read_text().splitlines()) == 4
    from codeact.runs.store import RunStore

    logged = RunStore(out / "runs.db").runs(limit=None)
    assert sorted(r.agent for r in logged) == ["json", "json"]  # no-agent runs no agent


def test_bench_rejects_unknown_configs_with_a_suggestion(tmp_path):
    proc = codeact("bench", "gsm8k", "--model", "openai-compat:http://127.0.0.1:9/v1#m",
                   "--agents", "codeact-cod", "--out", str(tmp_path))
    assert proc.returncode == 2
    assert "Did you mean 'codeact-code'" in proc.stderr


def test_serve_local_takes_an_optional_size():
    assert _positionals("gsm8k", [], serve_local=True) == ("gsm8k", "1.5b")
    assert _positionals("gsm8k", ["0.5b"], serve_local=True) == ("gsm8k", "0.5b")
    assert _positionals("0.5b", ["gsm8k"], serve_local=True) == ("gsm8k", "0.5b")
    assert _positionals("gsm8k", [], serve_local=False) == ("gsm8k", None)
    with pytest.raises(ConfigError, match="only goes after --serve-local"):
        _positionals("gsm8k", ["0.5b"], serve_local=False)
    with pytest.raises(ConfigError, match="one TASKSET"):
        _positionals("gsm8k", ["shop"], serve_local=True)


def test_bench_refuses_a_task_file_that_names_code_unless_allowed(tmp_path):
    tasks = tmp_path / "evil.jsonl"
    tasks.write_text(json.dumps({"id": "a", "question": "What is 2 + 3?", "answer": 5,
                                 "checker": "tests.bench.test_runner:arithmetic"}) + "\n")
    with ChatServer(default=arithmetic) as server:
        args = ["bench", str(tasks), "--model", f"openai-compat:{server.url}#m", "--agents", "no-agent",
                "--out", str(tmp_path / "out")]
        refused = codeact(*args)
        posts = sum(r.method == "POST" for r in server.requests)
        allowed = codeact(*args, "--allow-task-code")
    assert refused.returncode == 2 and posts == 0
    assert "names code to import" in refused.stderr and "--allow-task-code" in refused.stderr
    assert allowed.returncode == 0, allowed.stderr  # the checker ran (and choked: scored wrong)


def test_bench_sends_the_reply_cap_and_records_it(tmp_path):
    tasks = tmp_path / "arith.jsonl"
    tasks.write_text(json.dumps({"id": "a", "question": "What is 2 + 3?", "answer": 5}) + "\n")
    with ChatServer(default=arithmetic) as server:
        proc = codeact("bench", str(tasks), "--model", f"openai-compat:{server.url}#m", "--agents",
                       "codeact-json,no-agent", "--out", str(tmp_path / "out"), "--max-reply-tokens", "77")
        caps = {r.json["max_tokens"] for r in server.requests if r.method == "POST"}
    assert proc.returncode == 0, proc.stderr
    assert caps == {77}
    assert json.loads((tmp_path / "out" / "report.json").read_text())["max_reply_tokens"] == 77


# -- --serve-local never outlives the bench ----------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _server_child(bench_pid: int) -> int | None:
    for task in Path(f"/proc/{bench_pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"llama_cpp.server" in cmdline:
                return int(child)
    return None


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGKILL],
                         ids=lambda s: signal.Signals(s).name)
def test_serve_local_is_gone_within_seconds_however_the_bench_is_stopped(tmp_path, signum):
    for module in ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "120"}
    log = tmp_path / "stderr.txt"
    with log.open("w") as err:
        bench = subprocess.Popen(
            [sys.executable, "-m", "codeact", "bench", "shop", "--serve-local", "0.5b", "--agents", "codeact-json",
             "--limit", "6", "--threads", "1", "--out", str(tmp_path / "out")],
            stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=REPO)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        server = None
        while server is None or not (tmp_path / "out" / "results.jsonl").exists() and not _answers(log):
            assert bench.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            server = server or _server_child(bench.pid)
            time.sleep(0.2)
        time.sleep(1.0)  # a task is under way

        bench.send_signal(signum)

        gone_by = time.monotonic() + 10
        while _alive(server) and time.monotonic() < gone_by:
            time.sleep(0.1)
        assert not _alive(server), f"the server outlived {signal.Signals(signum).name}"
        code = bench.wait(timeout=60)
        if signum != signal.SIGKILL:
            assert code == (130 if signum == signal.SIGINT else 128 + signum), log.read_text()
            assert "resume" in log.read_text()
    finally:
        bench.kill()
        bench.wait()


def _answers(log: Path) -> bool:
    """The server named in the bench's log answers: the bench is past starting it."""
    found = re.search(r"on (http://127\.0\.0\.1:\d+/v1)", log.read_text())
    if not found:
        return False
    try:
        with urllib.request.urlopen(found.group(1) + "/models", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def test_bench_shows_paths_and_errors_as_the_characters_they_are(tmp_path):
    # A file name is data: ESC must not reach the terminal, and brackets must not be read as markup.
    evil = tmp_path / "t\x1b]52;c;aGk=\x07[red]x.jsonl"
    evil.write_text(json.dumps({"id": "a", "question": "q", "answer": 1, "checker": "m:f"}) + "\n")
    refused = codeact("bench", str(evil), "--model", "openai-compat:http://127.0.0.1:9/v1#m", "--out", str(tmp_path))
    assert refused.returncode == 2
    assert "\x1b" not in refused.stderr and "\x07" not in refused.stderr
    assert "t\\x1b]52;c;aGk=\\x07[red]x.jsonl" in refused.stderr.replace("\n", "")

    tasks = tmp_path / "arith.jsonl"
    tasks.write_text(json.dumps({"id": "a", "question": "What is 2 + 3?", "answer": 5}) + "\n")
    out = tmp_path / "[bold]out"
    with ChatServer(default=arithmetic) as server:
        done = codeact("bench", str(tasks), "--model", f"openai-compat:{server.url}#m", "--agents", "no-agent",
                       "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert f"report: {out / 'report.md'}" in done.stderr.replace("\n", "")


def test_help_names_every_shipped_task_set_and_agent_config():
    from codeact.bench.agents import AGENT_CONFIGS
    from codeact.bench.tasks import shipped_tasksets
    from codeact.cli.bench import AGENTS, TASKSETS, TECHNIQUE_CONFIGS

    assert sorted(TASKSETS) == shipped_tasksets()
    variants = {name for name in AGENT_CONFIGS if name.startswith("codeact-code+")}
    assert sorted(AGENTS) == sorted(set(AGENT_CONFIGS) - variants)
    assert sorted("codeact-code+" + name for name in TECHNIQUE_CONFIGS) == sorted(variants)
