"""Child processes that never outlive codeact: a parent-death signal, set before the child's program runs.

A server codeact starts (the benchmark's llama.cpp server; later MCP servers, workers) runs in
its own session so that a Ctrl-C in the terminal reaches codeact first and codeact stops it in
order. The price is that nothing stops it when codeact dies without cleaning up (SIGKILL, a
crash). Linux's PR_SET_PDEATHSIG closes that gap: the kernel signals the child when its parent
dies. Two details decide whether it works:

- It is set in the child, so the child first runs a tiny Python shim (this module, as
  `python -m codeact._children PARENT_PID -- COMMAND...`) that sets it, checks the parent is
  still the one that started it (it may have died before the flag was set), and execs the real
  command; the flag survives exec. No `preexec_fn`, which is unsafe in a threaded parent.
- The signal fires when the *thread* that forked the child exits, not the process. A child
  spawned from a worker thread would be killed when that thread ends, so every spawn goes
  through one long-lived thread of this module, which ends only with the process.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from queue import SimpleQueue
from typing import Any

__all__ = ["guarded_command", "spawn"]

_PR_SET_PDEATHSIG = 1


def guarded_command(command: Sequence[str], *, parent: int | None = None) -> list[str]:
    """`command` wrapped so that the child gets SIGKILL when `parent` (default: this process) dies."""
    if not sys.platform.startswith("linux"):
        return list(command)
    return [sys.executable, "-m", "codeact._children", str(parent or os.getpid()), "--", *command]


def spawn(command: Sequence[str], **popen: Any) -> subprocess.Popen[bytes]:
    """`subprocess.Popen(guarded_command(command), **popen)`, forked from the long-lived spawner thread."""
    future: Future[subprocess.Popen[bytes]] = Future()
    _spawner().put((list(command), popen, future))
    return future.result()


_queue: SimpleQueue[tuple[list[str], dict[str, Any], Future[Any]]] | None = None
_queue_lock = threading.Lock()


def _spawner() -> SimpleQueue[tuple[list[str], dict[str, Any], Future[Any]]]:
    global _queue
    with _queue_lock:
        if _queue is None:
            _queue = SimpleQueue()
            threading.Thread(target=_serve, args=(_queue,), name="codeact-spawner", daemon=True).start()
        return _queue


def _serve(queue: SimpleQueue[tuple[list[str], dict[str, Any], Future[Any]]]) -> None:
    while True:
        command, popen, future = queue.get()
        if not future.set_running_or_notify_cancel():
            continue
        try:
            future.set_result(subprocess.Popen(guarded_command(command), **popen))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            future.set_exception(exc)


def _main(argv: list[str]) -> None:
    """The shim: set the parent-death signal, make sure the parent is alive, exec the command."""
    if len(argv) < 3 or argv[1] != "--":
        sys.exit("usage: python -m codeact._children PARENT_PID -- COMMAND...")
    parent, command = int(argv[0]), argv[2:]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
        sys.exit(f"codeact: prctl(PR_SET_PDEATHSIG) failed: {os.strerror(ctypes.get_errno())}")
    if os.getppid() != parent:  # the parent died before the flag was set
        sys.exit(1)
    os.execvp(command[0], command)


if __name__ == "__main__":
    _main(sys.argv[1:])
