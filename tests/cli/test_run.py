"""`codeact run` as a user runs it: a subprocess talking to a real HTTP model server."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


# -- stdout carries the answer only on success (issue 9, items 7 and 12) ---------------------------
import re  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402

from tests.cli import _helpers  # noqa: E402
from tests.servers.chat_server import Reply, error  # noqa: E402


def test_a_failed_run_prints_nothing_on_stdout_and_says_how_to_resume(tmp_path):
    replies = [chat(fenced("x = 41\nprint(x)")), error(400, "context too long")]
    with ChatServer(replies) as server:
        proc = _helpers.codeact(tmp_path, "run", "Count", "--model", f"openai-compat:{server.url}#m",
                                "--sandbox", "process")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "model_error" in proc.stderr and "context too long" in proc.stderr
    assert "codeact resume " in proc.stderr
    with ChatServer([chat(fenced("print(41)")), chat(fenced("print(42)"))]) as server:
        proc = _helpers.codeact(tmp_path, "run", "Count", "--model", f"openai-compat:{server.url}#m",
                                "--sandbox", "process", "--max-steps", "1", "--quiet")
    assert (proc.returncode, proc.stdout) == (1, "")
    assert "max_steps" in proc.stderr and "--max-steps N" in proc.stderr


def _interrupt_when(proc, ready, deadline=30.0):
    started = time.monotonic()
    while not ready():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - started < deadline, "the run never got there"
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    return proc.communicate(timeout=60)


def _start(home, *args):
    return subprocess.Popen([sys.executable, "-m", "codeact", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_helpers.env_for(home), cwd=REPO)


def _status_of(home, run_id):
    listed = _helpers.cli(home, "runs", "--json")
    return {json.loads(line)["id"]: json.loads(line)["status"] for line in listed.stdout.splitlines()}[run_id]


def test_ctrl_c_while_the_model_thinks_ends_interrupted_with_a_resume_hint(tmp_path):
    replies = [chat(fenced("x = 41\nprint(x)")), Reply(body=chat("late").body, delay=20)]
    with ChatServer(replies) as server:
        proc = _start(tmp_path, "run", "Count", "--model", f"openai-compat:{server.url}#m", "--sandbox", "process")
        stdout, stderr = _interrupt_when(proc, lambda: len(server.requests) >= 2)
    assert proc.returncode == 130, stderr
    assert stdout == ""
    assert "Traceback" not in stderr
    run_id = re.search(r"codeact resume ([0-9a-f]{12})", stderr).group(1)
    assert _status_of(tmp_path, run_id) == "interrupted"


def test_ctrl_c_while_the_code_runs_ends_interrupted(tmp_path):
    replies = [chat(fenced("import time\nprint(41)\nopen('started', 'w').close()\ntime.sleep(30)"))]
    work = tmp_path / "work"
    with ChatServer(replies) as server:
        proc = _start(tmp_path, "run", "Wait", "--model", f"openai-compat:{server.url}#m", "--sandbox", "process",
                      "--workspace", str(work), "--quiet")
        stdout, stderr = _interrupt_when(proc, lambda: (work / "started").exists())
    assert proc.returncode == 130, stderr
    assert stdout == ""
    assert "interrupted" in stderr and "codeact resume " in stderr and "Traceback" not in stderr


@pytest.mark.parametrize(("code", "text", "as_json"), [
    ("final_answer({3, 1, 2})", "{1, 2, 3}", {"type": "set", "repr": "{1, 2, 3}", "value": [1, 2, 3]}),
    ("import datetime\nfinal_answer(datetime.date(2024, 1, 31))", "datetime.date(2024, 1, 31)",
     {"type": "datetime.date", "repr": "datetime.date(2024, 1, 31)", "value": "2024-01-31"}),
    ("final_answer((1, 'a'))", "(1, 'a')", {"type": "tuple", "repr": "(1, 'a')", "value": [1, "a"]}),
    ("final_answer({'a': [1, None, True]})", '{"a": [1, null, true]}', {"a": [1, None, True]}),
])
def test_non_json_answers_print_as_python_prints_them(tmp_path, code, text, as_json):
    with ChatServer([chat(fenced(code)), chat(fenced(code))]) as server:
        url = f"openai-compat:{server.url}#m"
        plain = _helpers.codeact(tmp_path, "run", "Answer", "--model", url, "--sandbox", "process", "--quiet")
        data = _helpers.codeact(tmp_path, "run", "Answer", "--model", url, "--sandbox", "process", "--json")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout == text + "\n"
    assert "OpaqueValue" not in plain.stdout
    assert json.loads(data.stdout)["output"] == as_json


# -- options (issue 9, item 8) ----------------------------------------------------------------------
@pytest.mark.parametrize("args", [
    ["run", "hi", "--timeout", "-1"],
    ["run", "hi", "--timeout", "0"],
    ["run", "hi", "--sandbox", "docker"],
    ["run", ""],
    ["run", "  \n "],
    ["run", "hi", "--max-tokens", "0"],
    ["run", "hi", "--max-seconds", "-5"],
    ["run", "hi", "--max-cost", "0"],
    ["run", "hi", "--max-steps", "0"],
    ["run", "hi", "--max-reply-tokens", "0"],
    ["resume", "abc", "--sandbox", "docker"],
    ["runs", "--status", "bogus"],
])
def test_usage_errors_exit_2(tmp_path, args):
    result = _helpers.cli(tmp_path, *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_status_filter_lists_the_statuses(tmp_path):
    result = _helpers.cli(tmp_path, "runs", "--status", "bogus")
    assert result.exit_code == 2
    for status in ("success", "interrupted", "crashed", "model_error", "budget_exceeded"):
        assert status in result.output


def test_version():
    from codeact import __version__

    result = _helpers.cli(Path("/nonexistent"), "--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"codeact {__version__}"


def test_budgets_and_reply_cap_reach_the_run(tmp_path):
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"m": [1_000, 0]}))  # $0.001 a token: the first step costs $100
    replies = [chat(fenced("print(1)"), usage=(100_000, 20)), chat(fenced("final_answer(2)"), usage=(100, 20))]
    with ChatServer(replies) as server:
        proc = _helpers.codeact(tmp_path, "run", "Two steps", "--model", f"openai-compat:{server.url}#m",
                                "--sandbox", "process", "--max-cost", "1", "--prices", str(prices),
                                "--max-reply-tokens", "77", "--json")
        sent = server.requests[0].json
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["status"] == "budget_exceeded"
    assert sent.get("max_tokens", sent.get("max_completion_tokens")) == 77
    with ChatServer(replies) as server:
        proc = _helpers.codeact(tmp_path, "run", "Two steps", "--model", f"openai-compat:{server.url}#m",
                                "--sandbox", "process", "--max-tokens", "50", "--quiet")
    assert (proc.returncode, proc.stdout) == (1, "")
    assert "budget_exceeded" in proc.stderr


def test_store_option_picks_the_run_log(tmp_path):
    log = tmp_path / "elsewhere" / "my-runs.db"
    with ChatServer([chat(fenced("final_answer(7)"))]) as server:
        proc = _helpers.codeact(tmp_path / "home", "run", "Seven", "--model", f"openai-compat:{server.url}#m",
                                "--sandbox", "process", "--store", str(log), "--quiet")
    assert (proc.returncode, proc.stdout) == (0, "7\n"), proc.stderr
    assert log.is_file()
    (run,) = [json.loads(line) for line in _helpers.cli(tmp_path, "runs", "--json", "--store", str(log)).stdout.splitlines()]
    assert run["output"] == 7
    assert "No runs" in _helpers.cli(tmp_path / "home", "runs").stdout
    assert _helpers.cli(tmp_path, "show", run["id"], "--store", str(log)).exit_code == 0


def _png(width: int = 2, height: int = 3) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def test_image_option_sends_the_image_to_a_model_that_reads_images(tmp_path):
    picture = tmp_path / "red.png"
    picture.write_bytes(_png())
    with ChatServer([chat(fenced("final_answer('red')"))]) as server:
        proc = codeact("run", "What colour is it?", "--model", f"openai-compat:{server.url}#test#vision",
                       "--sandbox", "process", "--image", str(picture))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "red\n"
    parts = server.requests[0].json["messages"][1]["content"]
    assert any(p.get("type") == "image_url" and p["image_url"]["url"].startswith("data:image/png;base64,")
               for p in parts), parts


def test_image_option_with_a_text_only_model_sends_a_note(tmp_path):
    picture = tmp_path / "red.png"
    picture.write_bytes(_png())
    with ChatServer([chat(fenced("final_answer('no')"))]) as server:
        proc = codeact("run", "What colour is it?", "--model", f"openai-compat:{server.url}#test#text",
                       "--sandbox", "process", "--image", str(picture))
    assert proc.returncode == 0, proc.stderr
    task = json.dumps(server.requests[0].json["messages"][1]["content"])
    assert "2x3 png" in task and "does not accept images" in task and "base64" not in task


def test_image_option_that_is_not_an_image_is_a_usage_error(tmp_path):
    bogus = tmp_path / "notes.png"
    bogus.write_text("not a picture")
    proc = codeact("run", "hi", "--model", "openai-compat:http://127.0.0.1:9/v1#m", "--sandbox", "process",
                   "--image", str(bogus), "--quiet")
    assert proc.returncode == 2, proc.stderr
    assert "notes.png" in proc.stderr or "image" in proc.stderr
    assert "Traceback" not in proc.stderr
