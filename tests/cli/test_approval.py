"""`codeact run` asks in the terminal: a real subprocess whose stdin is a pseudo-terminal (or not)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from codeact.cli.view import LiveView
from codeact.events import ApprovalDecided, ApprovalRequested
from tests.cli._helpers import REPO, cli, env_for, fenced, no_control
from tests.servers.chat_server import ChatServer, chat

CATCH = "try:\n    r = send('bob')\nexcept PermissionError as e:\n    r = str(e)\nfinal_answer(r)"


@pytest.fixture
def tool_file(tmp_path: Path) -> Path:
    path = tmp_path / "mytools.py"
    path.write_text("def send(to: str) -> str:\n    'Send a message.'\n    return f'sent to {to}'\n")
    return path


def run(tmp_path: Path, tool_file: Path, *flags: str, answers: str | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`codeact run` with `answers` typed into a pseudo-terminal on stdin (None: stdin is /dev/null)."""
    with ChatServer([chat(fenced(CATCH))]) as server:
        argv = [sys.executable, "-m", "codeact", "run", "send it", "--model", f"openai-compat:{server.url}#test",
                "--sandbox", "process", "--tool", f"{tool_file}:send", "--needs-approval", "send", *flags]
        env = env_for(tmp_path / "home")
        if answers is None:
            return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
                                  env=env, cwd=REPO, check=False)
        primary, secondary = os.openpty()
        try:
            os.write(primary, answers.encode())  # waits in the terminal's line buffer until read
            return subprocess.run(argv, stdin=secondary, capture_output=True, text=True, timeout=timeout,
                                  env=env, cwd=REPO, check=False)
        finally:
            os.close(primary)
            os.close(secondary)


def test_yes_in_the_terminal_approves(tmp_path: Path, tool_file: Path) -> None:
    proc = run(tmp_path, tool_file, answers="y\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "sent to bob\n"
    assert "approval needed" in proc.stderr and '"to": "bob"' in proc.stderr
    assert "send approved by terminal" in proc.stderr


def test_a_message_denies_and_is_shown_as_text(tmp_path: Path, tool_file: Path) -> None:
    proc = run(tmp_path, tool_file, answers="m\n[bold red]no way[/] \x1b]52;c;aGk=\x07\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("PermissionError: the call to `send` was denied by terminal: [bold red]no way[/]")
    assert "[bold red]no way[/]" in proc.stderr and no_control(proc.stderr) and no_control(proc.stdout)
    assert "\\x1b]52" in proc.stdout


def test_an_edit_in_the_terminal_changes_the_arguments(tmp_path: Path, tool_file: Path) -> None:
    proc = run(tmp_path, tool_file, answers='e\n{"to": "carol"}\n')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "sent to carol\n"


def test_an_edit_that_is_not_json_is_asked_again(tmp_path: Path, tool_file: Path) -> None:
    proc = run(tmp_path, tool_file, answers="e\nnot json\nn\n")
    assert proc.returncode == 0, proc.stderr
    assert "Not JSON" in proc.stderr and "denied by terminal: denied in the terminal" in proc.stdout


def test_no_answer_in_time_is_a_denial(tmp_path: Path, tool_file: Path) -> None:
    proc = run(tmp_path, tool_file, "--approval-timeout", "1", answers="")
    assert proc.returncode == 0, proc.stderr
    assert "no decision within 1 s" in proc.stdout and "no answer in time" in proc.stderr


def test_without_a_terminal_calls_are_denied_saying_which_flag_allows_them(tmp_path: Path, tool_file: Path) -> None:
    proc = run(tmp_path, tool_file)
    assert proc.returncode == 0, proc.stderr
    assert "there is no terminal to ask" in proc.stdout and "--approval auto" in proc.stdout


@pytest.mark.parametrize(("mode", "expected"), [("auto", "sent to bob"), ("deny", "--approval deny")])
def test_approval_modes_for_scripts(tmp_path: Path, tool_file: Path, mode: str, expected: str) -> None:
    proc = run(tmp_path, tool_file, "--approval", mode)
    assert proc.returncode == 0, proc.stderr
    assert expected in proc.stdout


def test_the_view_shows_approval_events_as_text() -> None:
    out = io.StringIO()
    view = LiveView(Console(file=out, width=200, force_terminal=False), live=False)
    view.show(ApprovalRequested(1, "r1", "send", {"to": "[red]x[/]"}, "`send` needs approval"))
    view.show(ApprovalDecided(1, "r1", "send", "deny", "[bold]no[/] \x1b[2J\x1b]52;c;aGk=\x07", by="server:[i]a[/i]"))
    view.show(ApprovalDecided(1, "r2", "send", "deny", "no decision within 5 s", by="timeout", timed_out=True))
    view.show(ApprovalDecided(1, "r3", "send", "edit", arguments={"to": "carol"}, by="ed"))
    text = out.getvalue()
    assert "[red]x[/]" in text and "denied by server:[i]a[/i]: [bold]no[/] \\x1b[2J\\x1b]52;c;aGk=\\x07" in text
    assert "no decision in time" in text and "approved by ed with edited arguments (to='carol')" in text
    assert no_control(text)


def test_a_resumed_run_still_needs_approval_for_the_tools_it_marked(tmp_path: Path, tool_file: Path) -> None:
    from tests.servers.chat_server import error

    home = tmp_path / "home"
    with ChatServer([chat(fenced("x = send('one')")), error(400, "stop here")]) as server:
        first = subprocess.run(
            [sys.executable, "-m", "codeact", "run", "send", "--model", f"openai-compat:{server.url}#test",
             "--sandbox", "process", "--tool", f"{tool_file}:send", "--needs-approval", "send", "--approval", "auto"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, env=env_for(home), cwd=REPO)
    assert first.returncode == 1 and "send approved by auto" in first.stderr
    run_id = first.stderr.split("codeact resume ")[1].split("`")[0]
    shown = cli(home, "show", run_id)
    assert "? approval asked: send(to='one')" in shown.output
    assert "send approved by auto" in shown.output
    with ChatServer([chat(fenced(CATCH))]) as server:
        resumed = subprocess.run(
            [sys.executable, "-m", "codeact", "resume", run_id, "--model", f"openai-compat:{server.url}#test"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, env=env_for(home), cwd=REPO)
    assert resumed.returncode == 0, resumed.stderr
    assert "there is no terminal to ask" in resumed.stdout  # the recorded call was served; the new one asked


def test_chat_asks_in_the_terminal_too(tmp_path: Path) -> None:
    tool_file = tmp_path / "marked.py"
    tool_file.write_text("from codeact import tool\n\n@tool(needs_approval=True)\n"
                         "def send(to: str) -> str:\n    'Send a message.'\n    return f'sent to {to}'\n")
    with ChatServer([chat(fenced(CATCH))]) as server:
        argv = [sys.executable, "-m", "codeact", "chat", "--model", f"openai-compat:{server.url}#test",
                "--sandbox", "process", "--tool", f"{tool_file}:send"]
        primary, secondary = os.openpty()
        try:
            os.write(primary, b"send it\ny\n/exit\n")
            proc = subprocess.run(argv, stdin=secondary, capture_output=True, text=True, timeout=120,
                                  env=env_for(tmp_path / "home"), cwd=REPO, check=False)
        finally:
            os.close(primary)
            os.close(secondary)
    assert proc.returncode == 0, proc.stderr
    assert "sent to bob" in proc.stdout and "approval needed" in proc.stderr
