"""`codeact runs`, `show`, `resume` and `replay` as a user runs them: a real HTTP model server,
a run log in a temporary CODEACT_HOME; runs and resumes in subprocesses, reads in-process."""

import json
import os
import subprocess
import sys
from pathlib import Path

from codeact.cli import _register
from tests.cli._helpers import cli as _cli
from tests.servers.chat_server import ChatServer, chat, error

REPO = Path(__file__).resolve().parents[2]
_register()


def codeact(home, *args, timeout=60):
    env = {**os.environ, "PYTHONPATH": str(REPO), "CODEACT_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "codeact", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=REPO, check=False)


def cli(home, *args, columns=200):
    """In-process, for the commands that only read the log (a subprocess costs ~1.5 s here)."""
    return _cli(home, *args, columns=columns)


def fenced(code):
    return f"Thought: next.\n```python\n{code}\n```"


def write_tools(path, calls, factor):
    path.write_text(
        "def grow(n: int) -> int:\n"
        "    'Grow a number.'\n"
        f"    open({str(calls)!r}, 'a').write(f'{{n}}\\n')\n"
        f"    return n * {factor}\n"
    )


def test_list_show_resume_replay(tmp_path):
    home, calls, tools = tmp_path / "home", tmp_path / "calls.txt", tmp_path / "tools.py"
    write_tools(tools, calls, 10)
    replies = [chat(fenced("x = grow(4)\nprint('x =', x)"), usage=(100, 20)), error(400, "context too long")]
    with ChatServer(replies) as server:
        first = codeact(home, "run", "Grow 4, then add 2", "--model", f"openai-compat:{server.url}#m",
                        "--sandbox", "process", "--tool", f"{tools}:grow", "--quiet")
    assert first.returncode == 1 and "model_error" in first.stderr

    listed = cli(home, "runs", "--json")
    assert listed.returncode == 0, listed.stderr
    (run,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (run["status"], run["steps"], run["prompt_tokens"], run["completion_tokens"]) == ("model_error", 1, 100, 20)
    table = cli(home, "runs")
    assert run["id"] in table.stdout and "model_error" in table.stdout and "Grow 4" in table.stdout

    shown = cli(home, "show", run["id"][:6])
    assert shown.returncode == 0, shown.stderr
    assert "Grow 4, then add 2" in shown.stdout and "x = 40" in shown.stdout and "grow(n=4)" in shown.stdout
    assert f"codeact resume {run['id']}" in shown.stdout

    with ChatServer([chat(fenced("final_answer(x + 2)"), usage=(150, 10))]) as server:
        resumed = codeact(home, "resume", run["id"], "--model", f"openai-compat:{server.url}#m",
                          "--tool", f"{tools}:grow", "--sandbox", "process")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout == "42\n"
    assert "resuming run" in resumed.stderr
    assert calls.read_text().split() == ["4"]  # grow(4) was served from the log, not called again

    (run,) = [json.loads(line) for line in cli(home, "runs", "--json").stdout.splitlines()]
    assert (run["status"], run["steps"], run["output"]) == ("success", 2, 42)

    replayed = codeact(home, "replay", run["id"], "--sandbox", "process")
    assert replayed.returncode == 0, replayed.stderr
    assert "no divergence" in replayed.stderr

    changed = tmp_path / "changed.py"
    write_tools(changed, calls, 100)
    diverged = cli(home, "replay", run["id"], "--sandbox", "process", "--tool", f"{changed}:grow", "--json")
    assert diverged.returncode == 1
    report = json.loads(diverged.stdout)
    assert report["ok"] is False
    assert report["divergences"][0]["step"] == 1 and report["divergences"][0]["what"] == "tool_result"


def test_unknown_run_is_a_clear_error(tmp_path):
    for command in (["show", "nope"], ["replay", "nope"], ["resume", "nope", "--model", "local"]):
        proc = cli(tmp_path, *command)
        assert proc.returncode == 2
        assert "no run 'nope'" in proc.output
        assert isinstance(proc.exception, SystemExit)  # a clean exit, not a traceback


def test_empty_log(tmp_path):
    proc = cli(tmp_path, "runs")
    assert proc.returncode == 0 and "No runs" in proc.stdout


def test_runs_table_is_readable_at_80_columns(tmp_path):
    from codeact.runs.store import RunStore

    store = RunStore(tmp_path / "runs.db")
    rows = [("a1b2c3d4e5f6", "budget_exceeded", 1_234_567, 0.0123),
            ("b1b2c3d4e5f6", "success", 4_321, None),
            ("c1b2c3d4e5f6", "model_error", 0, 0.0)]
    for run_id, status, tokens, cost in rows:
        store.create_run(run_id=run_id, task="Summarise the quarterly report and list [every] risk it names",
                         agent="code", model="openai-compat:http://127.0.0.1:8080/v1#qwen2.5-coder-1.5b-instruct")
        store.update_run(run_id, status=status, steps=3, prompt_tokens=tokens, completion_tokens=0, cost=cost)
    store.close()
    table = cli(tmp_path, "runs", "--store", str(tmp_path / "runs.db"), columns=80)
    assert table.returncode == 0, table.output
    lines = table.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert lines[0].split() == ["run", "status", "steps", "tokens", "cost", "age", "task"]
    by_id = {line.split()[0]: line for line in lines[1:]}
    assert set(by_id) == {r[0] for r in rows}
    assert "budget_exceeded" in by_id["a1b2c3d4e5f6"] and "1.2M" in by_id["a1b2c3d4e5f6"]
    assert "$0.0123" in by_id["a1b2c3d4e5f6"] and "$0" in by_id["c1b2c3d4e5f6"] and " ? " in by_id["b1b2c3d4e5f6"]
    for line in by_id.values():
        assert " 0s " in line or " 1s " in line  # age
        assert "Summarise the quarterly r" in line  # readable even next to the widest row
    wide = cli(tmp_path, "runs", "--store", str(tmp_path / "runs.db"), columns=160).stdout
    assert wide.splitlines()[0].split() == ["run", "status", "steps", "tokens", "cost", "age", "model", "task"]
    assert "qwen2.5-coder-1.5b-inst" in wide and "list [every] risk it names" in wide
