"""The private roots that hold sessions' workspaces: named after their owner, reaped when it is gone.

A host killed with SIGKILL cannot remove its `codeact-sessions-*` directory, so each root's name
carries the owning process's pid and start time (`codeact-sessions-<pid>-<start>-<random>`), and
the first root a process makes reaps every root of this user whose owner no longer runs (a pid
reused by another process has another start time). A session may have left a directory it made
unwritable (`chmod 0500`); removal opens such directories up first, as their owner can.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import threading

__all__ = ["PREFIX", "make_root", "reap_stale", "remove_tree"]

PREFIX = "codeact-sessions-"
_NAME = re.compile(re.escape(PREFIX) + r"(\d+)-(\d+)-[A-Za-z0-9_]+")
_reaped = False
_lock = threading.Lock()


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat); None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    try:
        return int(data.rsplit(b")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def make_root(mode: int) -> str:
    """A new private root for this process's sessions (the first call reaps stale ones)."""
    global _reaped
    with _lock:
        if not _reaped:
            _reaped = True
            reap_stale()
    pid = os.getpid()
    root = tempfile.mkdtemp(prefix=f"{PREFIX}{pid}-{_start_time(pid) or 0}-")
    os.chmod(root, mode)
    return root


def reap_stale(directory: str | None = None) -> list[str]:
    """Remove the session roots in `directory` (default: the temp dir) whose owner is gone; return them."""
    base = directory or tempfile.gettempdir()
    removed: list[str] = []
    try:
        names = os.listdir(base)
    except OSError:
        return removed
    for name in names:
        match = _NAME.fullmatch(name)
        if match is None:
            continue
        path = os.path.join(base, name)
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            continue
        pid, started = int(match[1]), int(match[2])
        if _start_time(pid) == started:
            continue  # its owner still runs
        remove_tree(path)
        if not os.path.lexists(path):
            removed.append(path)
    return removed


def remove_tree(path: str) -> None:
    """`shutil.rmtree`, also through directories a session made unreadable or unwritable."""

    def reopen(function: object, failed: str, info: object) -> None:
        parent = os.path.dirname(failed)
        for target in (parent, failed):
            try:
                st = os.stat(target, follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    os.chmod(target, stat.S_IMODE(st.st_mode) | 0o700)
            except OSError:
                pass
        try:
            if os.path.isdir(failed) and not os.path.islink(failed):
                shutil.rmtree(failed, ignore_errors=True)
            else:
                os.unlink(failed)
        except OSError:
            pass

    if not os.path.lexists(path):
        return
    shutil.rmtree(path, onerror=reopen)
    if os.path.lexists(path):
        shutil.rmtree(path, ignore_errors=True)
