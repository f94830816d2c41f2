"""Host-boundary attacks on the session layer: IPC, the disk quota, the workspace, the network channel.

Each attack runs as model code through `CodeAgent` + `ScriptedModel` and the default
`LocalSandbox` (see `_harness.attack`, which also checks that the run goes on to
`final_answer("survived")` and that no host secret reached the model). On top of that, `bounded`
checks on the host that the run ended with a status within the step limits plus a grace, that
host memory grew by less than `_RSS_CAP`, and that no session process or directory was left.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from codeact.sandbox.local import LocalSandbox, NetworkPolicy
from tests.security._harness import STEP_TIMEOUT, Listener, Outcome, attack

_RSS_CAP = 150 << 20
_GRACE = 15.0
ROOT = os.geteuid() == 0


def _rss() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


def _canaries() -> list[int]:
    """Host pids of processes whose command line carries the canary word."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and _is_canary(int(name)):
            found.append(int(name))
    return found


def _shmem() -> int:
    with open("/proc/meminfo") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("Shmem:"))


@contextmanager
def bounded(steps: int = 2, step_timeout: float = STEP_TIMEOUT) -> Iterator[None]:
    """The run inside ends within its limits, holds host memory under the cap, and leaves no process."""
    rss, started = _rss(), time.monotonic()
    yield
    elapsed = time.monotonic() - started
    assert elapsed < steps * step_timeout + _GRACE, f"the run took {elapsed:.1f} s"
    assert _rss() - rss < _RSS_CAP, f"host memory grew by {(_rss() - rss) >> 20} MiB"
    deadline = time.monotonic() + 5
    while _canaries() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _canaries(), "a process the code started outlived the run"


def _is_canary(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"sleeper-canary" in f.read()
    except OSError:
        return False


def _run(code: str, *, sandbox: Callable[[], Any] | Any = None, step_timeout: float = STEP_TIMEOUT) -> Outcome:
    with bounded(step_timeout=step_timeout):
        return attack(code, sandbox=sandbox, step_timeout=step_timeout)


# -- kernel objects: SysV IPC -----------------------------------------------------------------

_IPC = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
"""


def test_sysv_shared_memory_is_not_shared_between_runs_and_is_freed() -> None:
    size = 128 << 20
    before = _shmem()
    first = _run(
        _IPC
        + f"""
ids = [libc.shmget(0x5ec0 + i, {size}, 0o1000 | 0o666) for i in range(2)]
for shm in ids:
    ctypes.memset(libc.shmat(shm, None, 0), 0x41, {size})
print('made', ids)
"""
    )
    assert "made [" in first.observation and "-1" not in first.observation.split("made", 1)[1][:40]
    second = _run(
        _IPC
        + """
print('found', [libc.shmget(0x5ec0 + i, 0, 0) for i in range(2)], libc.semget(0x5ec0, 0, 0), libc.msgget(0x5ec0, 0))
"""
    )
    assert "found [-1, -1] -1 -1" in second.observation, second.observation
    deadline = time.monotonic() + 5  # the kernel frees a dead IPC namespace from a work queue
    while _shmem() - before >= size and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _shmem() - before < size, "segments of a finished run stay pinned in host memory"


# -- the disk quota -----------------------------------------------------------------------------

_QUOTA = lambda: LocalSandbox(disk_quota=16 << 20)  # noqa: E731 - a factory per run


def test_unlinked_but_open_files_count_against_the_quota() -> None:
    out = _run(
        """
import os, time
held = []
for i in range(8):
    f = open(f'blob{i}', 'wb'); os.unlink(f'blob{i}')
    for _ in range(8):
        f.write(os.urandom(1 << 20)); f.flush()
    os.fsync(f.fileno()); held.append(f)
time.sleep(8)
print('held', len(held) * 8, 'MiB unnoticed')
""",
        sandbox=_QUOTA,
        step_timeout=15,
    )
    assert "DiskQuotaExceeded" in out.observation and "unnoticed" not in out.observation


def test_a_directory_made_unreadable_still_counts() -> None:
    out = _run(
        """
import os, time
os.makedirs('hide/inner')
for i in range(8):
    with open(f'hide/inner/blob{i}', 'wb') as f:
        for _ in range(8):
            f.write(os.urandom(1 << 20))
        f.flush(); os.fsync(f.fileno())
os.chmod('hide/inner', 0o300); os.chmod('hide', 0o100)
time.sleep(8)
print('hid 64 MiB unnoticed')
""",
        sandbox=_QUOTA,
        step_timeout=15,
    )
    assert "DiskQuotaExceeded" in out.observation and "unnoticed" not in out.observation


# -- the explicit workspace -----------------------------------------------------------------------


@pytest.mark.skipif(not ROOT, reason="as a normal user the session runs as that user, who owns the files")
def test_existing_workspace_files_cannot_be_unlinked_renamed_or_replaced(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "reports").mkdir(parents=True)
    (ws / "input.csv").write_text("a,b\n1,2\n")
    (ws / "reports" / "q1.txt").write_text("q1\n")
    out = _run(
        """
import os
attempt('unlink', lambda: os.unlink('input.csv'))
attempt('rename', lambda: os.rename('input.csv', 'gone.csv'))
attempt('truncate', lambda: open('input.csv', 'w'))
open('fake.csv', 'w').write('evil')
attempt('replace', lambda: os.replace('fake.csv', 'input.csv'))
attempt('rename dir', lambda: os.rename('reports', 'old'))
attempt('replace in dir', lambda: open('reports/q1.txt', 'w'))
attempt('unlink in dir', lambda: os.unlink('reports/q1.txt'))
print('read', open('input.csv').read().splitlines()[0])
""",
        sandbox=lambda: LocalSandbox(workspace=ws),
    )
    assert out.observation.count(": blocked") == 7 and "read a,b" in out.observation
    assert (ws / "input.csv").read_text() == "a,b\n1,2\n" and (ws / "reports" / "q1.txt").read_text() == "q1\n"
    assert (ws / "fake.csv").stat().st_uid == os.geteuid()  # what it wrote was given back
    assert not ws.stat().st_mode & stat.S_ISVTX  # the directory's mode came back too


# -- leftovers --------------------------------------------------------------------------------------


def test_locked_directories_and_background_processes_do_not_outlive_the_sandbox() -> None:
    box: list[LocalSandbox] = []

    def make() -> LocalSandbox:
        box.append(LocalSandbox())
        return box[-1]

    _run(
        """
import os, subprocess, sys
os.makedirs('locked/deeper'); open('locked/deeper/f', 'w').write('x')
os.chmod('locked/deeper', 0o000); os.chmod('locked', 0o500)
sleeper = [sys.executable, '-c', 'import time; time.sleep(600)', 'sleeper-canary']
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, sleeper)
    os._exit(0)
subprocess.Popen(sleeper, start_new_session=True)
print('planted')
""",
        sandbox=make,
    )
    assert len(box) == 1
    workspaces = [str(b._zygote.workspace_of(b._identity)) for b in box if b._zygote and b._identity]
    assert all(not os.path.exists(w) for w in workspaces)


# -- the network channel --------------------------------------------------------------------------


def test_malformed_requests_on_the_network_channel_do_not_stop_it(tcp_listener: Listener) -> None:
    port = tcp_listener.sock.getsockname()[1]
    out = _run(
        f"""
import json, socket, sys
shim = sys.modules['_codeact_guest.netshim']
for raw in [b'[' * 60000 + b']' * 60000, b'{{"id": {{"a": 1}}, "host": "x", "port": 1}}',
            json.dumps({{"id": 9, "host": "127.0.0.1" + chr(0) + "evil", "port": {port}}}).encode(),
            json.dumps({{"id": 9, "host": "h" * 5000, "port": {port}}}).encode(),
            json.dumps({{"id": 9, "host": "127.0.0.1", "port": "{port}"}}).encode()]:
    try:
        shim._control.sendall(raw)
        print('reply', json.loads(socket.recv_fds(shim._control, 65536, 1)[0]).get('errno'))
    except OSError as exc:
        print('send refused', exc.errno)
s = socket.create_connection(('127.0.0.1', {port}), timeout=5)
print('still connects', s.fileno() > 0)
""",
        sandbox=lambda: LocalSandbox(network=[f"127.0.0.1:{port}"]),
    )
    assert "still connects True" in out.observation
    assert out.observation.count("reply 22") >= 4  # EINVAL for each malformed request


def test_connection_floods_are_capped_per_session(tcp_listener: Listener) -> None:
    port = tcp_listener.sock.getsockname()[1]
    box: list[LocalSandbox] = []

    def make() -> LocalSandbox:
        box.append(LocalSandbox(network=NetworkPolicy((f"127.0.0.1:{port}",), max_connections=25)))
        return box[-1]

    out = _run(
        f"""
import socket
ok = refused = 0
for _ in range(60):
    try:
        socket.create_connection(('127.0.0.1', {port}), timeout=2).close(); ok += 1
    except OSError:
        refused += 1
print('ok', ok, 'refused', refused)
""",
        sandbox=make,
    )
    assert "ok 25 refused 35" in out.observation, out.observation
    assert len(box[0].connections) <= 1_000


def test_numeric_spellings_and_names_of_loopback_never_reach_the_host(tcp_listener: Listener) -> None:
    port = tcp_listener.sock.getsockname()[1]
    names = ["localhost", "2130706433", "0177.0.0.1", "0x7f.1", "127.1", "localhost."]
    out = _run(
        f"""
import socket
for name in {names!r}:
    attempt(name, lambda: socket.create_connection((name, {port}), timeout=2))
""",
        sandbox=lambda: LocalSandbox(network=[f"{n}:{port}" for n in names[:-1]]),
    )
    assert out.observation.count(": blocked") == len(names), out.observation
    assert tcp_listener.events == []


def test_the_zygote_control_socket_is_out_of_reach() -> None:
    out = _run(
        """
import os, socket, json
forged = json.dumps({'op': 'spawn', 'id': 1, 'session': {'fds': 0, 'uid': 0, 'gid': 0}}).encode()
sent = []
for fd in range(1024):
    try:
        s = socket.socket(fileno=os.dup(fd))
    except OSError:
        continue
    try:
        if s.type == socket.SOCK_SEQPACKET:
            s.send(forged); sent.append(fd)
    except OSError:
        pass
    finally:
        s.close()
print('forged on', sent)
"""
    )
    # The only SEQPACKET socket a session may hold is its own network channel (none here).
    assert "forged on []" in out.observation, out.observation
