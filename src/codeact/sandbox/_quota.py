"""A disk quota for workspaces on filesystems without quotas: watch free space, measure on growth.

The workspace is a host directory, so the sandbox could fill the host's disk one file at a
time (RLIMIT_FSIZE only caps each file). One thread watches every open sandbox: every 100 ms
it reads the free space of each filesystem holding a workspace (one `statvfs`, microseconds),
and only when that has dropped by a quarter of the smallest quota since the last measurement
does it measure the workspaces on that filesystem. A workspace that grew past its quota gets
its callback (the sandbox then kills its session). Detection lags by about 100 ms plus one
measurement, so a fast writer can overshoot the quota by what it writes in that time.

What a session holds is more than what a walk of its directory finds: a file that was unlinked
while still open (or mapped) keeps its blocks. A watch may name the session's processes
(`holders`), and the measurement then adds the files on the workspace's filesystem that those
processes hold open or mapped but that no longer have a name (`held_unlinked`). A directory the
code made unreadable (`chmod 0`) is opened up again by the host, which owns it, so it is counted.
Between checks the thread sleeps: an idle sandbox costs ten `statvfs` calls a second.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["Watch", "held_unlinked", "session_pids", "unwatch", "usage", "watch"]

_INTERVAL = 0.1
_MAX_ENTRIES = 200_000
_INODE_TRIGGER = 20_000


def usage(path: str, *, max_entries: int = _MAX_ENTRIES) -> int:
    """Bytes allocated under `path` (symlinks not followed; 4 KiB at least per entry).

    Past `max_entries` entries the walk stops and returns a number larger than any quota:
    an inode flood counts as over quota.
    """
    total, entries = 0, 0
    stack = [path]
    while stack:
        try:
            it = _scandir(stack.pop())
        except OSError:
            continue
        with it:
            for entry in it:
                entries += 1
                if entries > max_entries:
                    return 1 << 62
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                total += max(st.st_blocks * 512, 4096)
                if stat.S_ISDIR(st.st_mode):
                    stack.append(entry.path)
    return total


def _scandir(path: str) -> os._ScandirIterator[str]:
    """`os.scandir`, opening up a directory our own uid owns but made unreadable (`chmod 0300`)."""
    try:
        return os.scandir(path)
    except PermissionError:
        st = os.stat(path, follow_symlinks=False)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            raise
        os.chmod(path, stat.S_IMODE(st.st_mode) | 0o700, follow_symlinks=False)
        return os.scandir(path)


def session_pids(leader: int) -> list[int]:
    """Every process in the pid namespace whose first process (pid 1 there) is `leader` (a host pid)."""
    try:
        ns = os.stat(f"/proc/{leader}/ns/pid").st_ino
    except OSError:
        return []
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.stat(f"/proc/{name}/ns/pid").st_ino == ns:
                found.append(int(name))
        except OSError:
            continue
    return found


def held_unlinked(pids: Iterable[int], device: int) -> int:
    """Bytes of files on `device` that `pids` hold open or mapped although they have no name left."""
    seen: set[int] = set()
    total = 0

    def count(link: str) -> None:
        nonlocal total
        try:
            st = os.stat(link)  # follows the magic link to the open file itself
        except OSError:
            return
        if st.st_dev == device and st.st_nlink == 0 and st.st_ino not in seen and stat.S_ISREG(st.st_mode):
            seen.add(st.st_ino)
            total += st.st_blocks * 512

    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            fds = []
        for fd in fds:
            count(f"/proc/{pid}/fd/{fd}")
        try:
            with open(f"/proc/{pid}/maps") as f:
                ranges = [line.split(None, 1)[0] for line in f if line.rstrip().endswith("(deleted)")]
        except OSError:
            ranges = []
        for r in ranges[:4096]:
            count(f"/proc/{pid}/map_files/{r}")
    return total


@dataclass(eq=False)
class Watch:
    path: str
    quota: int
    on_exceeded: Callable[[int], None]
    baseline: int
    device: int
    holders: Callable[[], Iterable[int]] | None = None
    """The host pids of the processes whose unlinked-but-open files count too."""

    def held(self) -> int:
        """What the directory and its holders' unlinked files take now."""
        total = usage(self.path)
        if self.holders is not None:
            try:
                total += held_unlinked(self.holders(), self.device)
            except Exception:  # noqa: BLE001 - a failing lookup counts nothing, the walk still counts
                pass
        return total


_lock = threading.Lock()
_watches: list[Watch] = []
_free: dict[int, tuple[int, int]] = {}  # device -> (free bytes, free inodes) at the last measurement
_wake = threading.Event()
_thread: threading.Thread | None = None


def watch(
    path: str,
    quota: int,
    on_exceeded: Callable[[int], None],
    *,
    holders: Callable[[], Iterable[int]] | None = None,
) -> Watch:
    """Call `on_exceeded(growth)` when `path` holds more than `quota` bytes beyond what it holds now.

    Args:
        holders: returns the host pids whose open but unlinked files on `path`'s filesystem count.
    """
    global _thread
    w = Watch(path, quota, on_exceeded, usage(path), os.stat(path).st_dev, holders)
    with _lock:
        _watches.append(w)
        if w.device not in _free:
            _free[w.device] = _statvfs(path)
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_run, name="codeact-disk-quota", daemon=True)
            _thread.start()
    _wake.set()
    return w


def unwatch(w: Watch) -> None:
    with _lock:
        if w in _watches:
            _watches.remove(w)
        if not any(other.device == w.device for other in _watches):
            _free.pop(w.device, None)


def _statvfs(path: str) -> tuple[int, int]:
    try:
        st = os.statvfs(path)
    except OSError:
        return (0, 0)
    return st.f_bavail * st.f_frsize, st.f_favail


def _run() -> None:
    while True:
        with _lock:
            watches = list(_watches)
        if not watches:
            _wake.clear()
            _wake.wait(5.0)
            continue
        for device in {w.device for w in watches}:
            group = [w for w in watches if w.device == device]
            _check(device, group)
        # Sleep between checks; a new watch wakes us early. The event must be cleared, or every
        # later wait returns at once and the thread spins (a core's worth of an idle host).
        if _wake.wait(_INTERVAL):
            _wake.clear()


def _check(device: int, group: list[Watch]) -> None:
    free, inodes = _statvfs(group[0].path)
    with _lock:
        last_free, last_inodes = _free.get(device, (free, inodes))
        # Space freed (files deleted) raises the mark, so growth is measured from the highest point.
        _free[device] = (max(free, last_free), max(inodes, last_inodes))
    trigger = max(min(w.quota for w in group) // 4, 1 << 20)
    if last_free - free < trigger and last_inodes - inodes < _INODE_TRIGGER:
        return
    for w in group:
        grown = w.held() - w.baseline
        if grown > w.quota:
            try:
                w.on_exceeded(grown)
            except Exception:  # noqa: BLE001, S110 - a failing callback must not stop the watch
                pass
    with _lock:
        _free[device] = _statvfs(group[0].path)
