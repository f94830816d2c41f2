"""Child processes die with codeact, however codeact dies, whichever thread started them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


PARENT = textwrap.dedent("""
    import sys, threading, time
    from codeact._children import spawn

    def start():  # a short-lived thread: the child must survive it
        child = spawn(["sleep", "120"])
        print(child.pid, flush=True)

    thread = threading.Thread(target=start)
    thread.start()
    thread.join()
    time.sleep(120)
""")


def test_a_child_outlives_the_thread_that_asked_for_it_but_not_a_killed_parent():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    try:
        child = int(parent.stdout.readline())
        time.sleep(0.5)
        assert alive(child)  # the spawning thread has ended; the child has not
        parent.send_signal(signal.SIGKILL)  # no cleanup runs in the parent
        parent.wait(timeout=10)
        assert gone_within(child, 5)
    finally:
        parent.kill()
        parent.wait()


def test_the_shim_refuses_to_run_for_a_parent_that_is_already_gone():
    proc = subprocess.run([sys.executable, "-m", "codeact._children", "1", "--", "true"],
                          env={**os.environ, "PYTHONPATH": str(REPO / "src")}, timeout=30)
    assert proc.returncode == 1
