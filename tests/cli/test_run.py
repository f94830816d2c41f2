"""`codeact run` as a user runs it: a subprocess talking to a real HTTP model server."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.servers.chat_server import ChatServer, chat

REPO = Path(__file__).resolve().parents[2]


def codeact(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "codeact", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=REPO)


def fenced(code: str) -> str:
    return f"Thought: compute.\n```python\n{code}\n```"


def test_json_output_describes_the_whole_run():
    replies = [chat(fenced("primes = [n for n in range(2, 100) if all(n % d for d in range(2, n))]\n"
                           "print(len(primes))"), usage=(120, 30)),
               chat(fenced("final_answer(sum(primes))"), usage=(160, 10))]
    with ChatServer(replies) as server:
        proc = codeact("run", "Sum of primes below 100?", "--model", f"openai-compat:{server.url}#test",
                       "--sandbox", "process", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    assert data["status"] == "success"
    assert data["output"] == 1060
    assert data["usage"] == {"prompt_tokens": 280, "completion_tokens": 40, "total_tokens": 320}
    assert [s["index"] for s in data["steps"]] == [1, 2]
    assert "25" in data["steps"][0]["observation"]
    assert "sum(primes)" in data["steps"][1]["code"]


def test_answer_is_the_last_line_of_stdout_and_view_goes_to_stderr(tmp_path):
    tool_file = tmp_path / "mytools.py"
    tool_file.write_text("def shout(text: str) -> str:\n    'Upper-case text.'\n    return text.upper()\n")
    with ChatServer([chat(fenced("final_answer(shout('done'))"))]) as server:
        proc = codeact("run", "Shout done", "--model", f"openai-compat:{server.url}#test", "--sandbox",
                       "process", "--tool", f"{tool_file}:shout")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "DONE\n"
    assert "step 1" in proc.stderr and "shout" in proc.stderr


def test_unreachable_server_is_a_clear_failure():
    proc = codeact("run", "hi", "--model", "openai-compat:http://127.0.0.1:9/v1#m", "--sandbox", "process",
                   "--quiet")
    assert proc.returncode == 1
    assert "127.0.0.1:9" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_model_suggests_the_right_one():
    proc = codeact("run", "hi", "--model", "opnai:gpt-4o")
    assert proc.returncode == 2
    assert "Did you mean" in proc.stderr and "openai" in proc.stderr


def test_bad_tool_spec_is_a_usage_error():
    proc = codeact("run", "hi", "--model", "openai-compat:http://127.0.0.1:9/v1#m", "--tool", "nosuchmod:fn")
    assert proc.returncode == 2
    assert "cannot import module 'nosuchmod'" in proc.stderr
