"""`codeact chat` as a user drives it: a subprocess fed lines on stdin, a real HTTP model server,
the default (isolated) sandbox."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from codeact.runs.store import RunStore
from tests._isolation import require_sandbox
from tests.cli import _helpers
from tests.servers.chat_server import ChatServer, chat

pytestmark = require_sandbox()


def test_turns_share_the_kernel_and_the_commands_work(tmp_path):
    replies = [chat(_helpers.fenced("x = 5\nfinal_answer(x)")),
               chat(_helpers.fenced("final_answer(x + 1)")),
               chat(_helpers.fenced("final_answer('x' in globals())")),
               chat(_helpers.fenced("final_answer('\\x1b[2Jboo')"))]
    saved = tmp_path / "talk.json"
    lines = f"set x to 5\n\nadd one\n/save {saved}\n/nope\n/reset\nis x there?\nclear\n/exit\nnever sent\n"
    with ChatServer(replies) as server:
        proc = subprocess.run([sys.executable, "-m", "codeact", "chat", "--model", f"openai-compat:{server.url}#test",
                               "--quiet", "--store", str(tmp_path / "runs.db")], input=lines, capture_output=True,
                              text=True, timeout=120, env=_helpers.env_for(tmp_path), cwd=_helpers.REPO, check=False)
        sent = [r.json["messages"] for r in server.requests]
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["5", "6", "false", "\\x1b[2Jboo"]  # shown, never obeyed
    assert "unknown command /nope" in proc.stderr
    assert len(sent) == 4
    assert sent[1][-1]["content"] == "Task: add one" and len(sent[1]) == 5  # the first turn, then this
    assert len(sent[2]) == 2  # after /reset: system prompt and task only
    data = json.loads(saved.read_text(encoding="utf-8"))
    assert [m["role"] for m in data["messages"]] == ["system", "user", "assistant", "user", "user", "assistant",
                                                     "user"]
    store = RunStore(tmp_path / "runs.db")
    metas = [run.meta for run in store.runs()]
    store.close()
    conversations = {m["conversation_id"] for m in metas}
    assert len(metas) == 4 and len(conversations) == 2  # two conversations: before and after /reset
    assert sorted(m["turn"] for m in metas) == [1, 1, 2, 2]


def test_ctrl_c_interrupts_the_turn_not_the_session(tmp_path):
    work = tmp_path / "work"
    replies = [chat(_helpers.fenced("open('started', 'w').close()\nimport time\ntime.sleep(60)")),
               chat(_helpers.fenced("final_answer('still here')"))]
    with ChatServer(replies) as server:
        proc = subprocess.Popen(
            [sys.executable, "-m", "codeact", "chat", "--model", f"openai-compat:{server.url}#test", "--quiet",
             "--workspace", str(work)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=_helpers.env_for(tmp_path), cwd=_helpers.REPO)
        try:
            assert proc.stdin is not None
            proc.stdin.write("sleep a minute\n")
            proc.stdin.flush()
            deadline = time.monotonic() + 60
            while not (work / "started").exists():
                assert time.monotonic() < deadline and proc.poll() is None, "the first turn never started"
                time.sleep(0.1)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate("are you there?\n/exit\n", timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, err
    assert out.splitlines() == ["still here"]
    assert "interrupted" in err
