"""The live view: a status that moves while the model thinks, and the reply as it streams in."""

import io
import os
import pty
import select
import subprocess
import sys
import time

from rich.console import Console

from codeact.cli.view import LiveView
from codeact.models.base import Usage
from codeact.runs.events import ModelDelta, ModelReplied, RunStarted
from tests.cli._helpers import REPO, env_for, fenced
from tests.servers.chat_server import ChatServer, chat_stream


def terminal(buffer, width=80):
    return Console(file=buffer, force_terminal=True, width=width, height=30, color_system=None,
                   legacy_windows=False)


def test_status_moves_before_the_first_token_and_the_reply_grows(tmp_path):
    buffer = io.StringIO()
    view = LiveView(terminal(buffer))
    view.show(RunStarted(task="t", agent="code", model="m", tools=(), max_steps=5))
    time.sleep(1.3)  # no event at all: the clock must still move
    waiting = buffer.getvalue()
    assert "step 1 · thinking" in waiting
    assert "1.0 s" in waiting or "1.1 s" in waiting or "1.2 s" in waiting
    for n, piece in enumerate(["Thought: I will ", "count [the] words", "\n```python\nprint(1)"], 1):
        view.show(ModelDelta(step=1, text=piece, tokens=n))
        time.sleep(0.3)
    streamed = buffer.getvalue()[len(waiting):]
    assert "step 1 · writing" in streamed and "3 tokens" in streamed
    assert "Thought: I will count [the] words" in streamed
    view.show(ModelReplied(step=1, text="...", usage=Usage(1, 3), seconds=1.0))
    view.close()


def test_deltas_carry_no_control_to_the_terminal():
    buffer = io.StringIO()
    view = LiveView(terminal(buffer))
    view.show(RunStarted(task="t", agent="code", model="m", tools=(), max_steps=5))
    view.show(ModelDelta(step=1, text="hi \x1b]52;c;aGk=\x07 \x1b]0;title\x07 \x9b2J", tokens=1))
    time.sleep(0.4)
    view.close()
    out = buffer.getvalue()
    assert "hi \\x1b]52;c;aGk=\\x07 \\x1b]0;title\\x07 \\x9b2J" in out
    assert "\x1b]" not in out and "\x07" not in out and "\x9b" not in out


def test_a_view_that_is_not_a_terminal_prints_finished_steps_only():
    buffer = io.StringIO()
    view = LiveView(Console(file=buffer, width=80))
    view.show(RunStarted(task="t", agent="code", model="m", tools=(), max_steps=5))
    view.show(ModelDelta(step=1, text="partial", tokens=1))
    view.close()
    assert "partial" not in buffer.getvalue() and "thinking" not in buffer.getvalue()


def test_codeact_run_streams_the_reply_into_a_terminal(tmp_path):
    """In a real pseudo-terminal: the status and the partial reply appear before the reply ends."""
    reply = fenced("final_answer(6 * 7)", thought="multiplying [six] by seven, slowly")
    pieces = [reply[i:i + 3] for i in range(0, len(reply), 3)]
    with ChatServer([chat_stream(pieces, usage=(5, len(pieces)), event_delay=0.1)]) as server:
        main, child = pty.openpty()
        os.set_blocking(main, False)
        env = env_for(tmp_path, COLUMNS="100", LINES="30", TERM="xterm-256color")
        proc = subprocess.Popen([sys.executable, "-m", "codeact", "run", "Multiply", "--model",
                                 f"openai-compat:{server.url}#m", "--sandbox", "process"],
                                stdin=child, stdout=subprocess.PIPE, stderr=child, env=env, cwd=REPO)
        os.close(child)
        seen, deadline = b"", time.monotonic() + 60
        while time.monotonic() < deadline:
            if select.select([main], [], [], 0.2)[0]:
                try:
                    chunk = os.read(main, 65536)
                except OSError:  # the child side is closed
                    break
                seen += chunk
            elif proc.poll() is not None:
                break
        stdout = proc.stdout.read().decode()
        os.close(main)
    assert proc.wait(timeout=30) == 0
    assert stdout == "42\n"
    text = seen.decode("utf-8", "replace")
    # "writing" and the token count are drawn only from ModelDelta events, while the reply streams.
    assert "step 1" in text and "writing" in text and "tokens" in text
    assert "multiplying [six]" in text
    assert "\x1b]" not in text  # no OSC from us either: only colours and cursor moves
