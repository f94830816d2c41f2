"""The zygote: sharing, the warm pool, session identities, and sessions dying with their host."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from codeact.errors import SandboxError
from codeact.sandbox import zygote as zygote_module
from codeact.sandbox.local import LocalSandbox
from codeact.sandbox.probe import probe
from codeact.sandbox.session import Identity, SessionParams
from codeact.sandbox.zygote import ZygoteSpec, acquire, release
from tests._isolation import require_sandbox

pytestmark = require_sandbox()
ROOT = os.geteuid() == 0


def _host_pid(pidfd: int) -> int:
    with open(f"/proc/self/fdinfo/{pidfd}") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Pid:"))


def _gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(") ", 1)[1].startswith("Z"):
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.02)
    return False


def test_sandboxes_share_a_zygote_and_its_pool() -> None:
    bwrap = str(probe().bwrap_path)
    first = acquire(ZygoteSpec(), bwrap=bwrap)
    second = acquire(ZygoteSpec(), bwrap=bwrap)
    try:
        assert first is second and first.alive and first.users >= 2
        session = first.take(SessionParams())
        try:
            hello = session.channel.recv(10)
            assert hello is not None and hello["op"] == "hello" and hello["pid"] == 1
            assert session.identity.subdir and os.path.isdir(first.workspace_of(session.identity))
            assert (session.identity.uid is not None) == ROOT
        finally:
            session.kill()
    finally:
        release(first)
        release(second)


def test_a_killed_session_reports_how_it_ended() -> None:
    bwrap = str(probe().bwrap_path)
    zygote = acquire(ZygoteSpec(), bwrap=bwrap)
    try:
        session = zygote.spawn(SessionParams(), zygote.new_identity())
        assert session.channel.recv(10) is not None and session.alive()
        assert session.exit_reason(wait=0.05) is None
        session.terminate()
        assert "SIGKILL" in (session.exit_reason(wait=5) or "")
        assert not session.alive()
        session.kill()
    finally:
        release(zygote)


def test_bad_identities_are_refused() -> None:
    bwrap = str(probe().bwrap_path)
    zygote = acquire(ZygoteSpec(), bwrap=bwrap)
    try:
        with pytest.raises(SandboxError, match="bad session directory"):
            zygote.spawn(SessionParams(), Identity("..", None, None))
    finally:
        release(zygote)


def test_a_dead_zygote_is_replaced() -> None:
    with LocalSandbox() as sb:
        sb.start({})
        zygote = sb._zygote
        assert zygote is not None
        kernel = sb._client.kernel
        zygote._process.kill()
        zygote._process.wait()
        deadline = time.monotonic() + 5
        while kernel.alive() and time.monotonic() < deadline:  # type: ignore[union-attr]
            time.sleep(0.01)
        lost = sb.execute("1")
        assert lost.state_lost
        assert sb.execute("2").result == "2"
        assert sb._zygote is not zygote and sb._zygote is not None and sb._zygote.alive


def test_closing_a_zygote_ends_its_sessions() -> None:
    bwrap = str(probe().bwrap_path)
    zygote = zygote_module.Zygote(ZygoteSpec(), bwrap=bwrap)
    session = zygote.spawn(SessionParams(), zygote.new_identity())
    pid = _host_pid(session.pidfd or -1)
    zygote.close()
    assert _gone(pid)
    session.kill()
    assert not os.path.exists(zygote.root)


def test_sessions_die_with_their_host() -> None:
    script = textwrap.dedent(
        """
        import sys, time
        from codeact.sandbox.local import LocalSandbox
        sb = LocalSandbox()
        sb.start({})
        sb.execute("import os\\nif os.fork() == 0:\\n    import time; time.sleep(300)")
        kernel = sb._client.kernel
        with open(f"/proc/self/fdinfo/{kernel.pidfd}") as f:
            pid = next(line.split()[1] for line in f if line.startswith("Pid:"))
        print(pid, sb._zygote._process.pid, flush=True)
        time.sleep(300)
        """
    )
    host = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        line = host.stdout.readline() if host.stdout else ""
        kernel_pid, bwrap_pid = (int(x) for x in line.split())
        host.send_signal(signal.SIGKILL)
        host.wait(timeout=10)
        assert _gone(bwrap_pid) and _gone(kernel_pid)
    finally:
        if host.poll() is None:
            host.kill()
