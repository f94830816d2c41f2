"""One isolated kernel session as the host holds it: signalled through a pidfd, reaped by its zygote.

A session's kernel lives in the zygote's pid namespace (and is pid 1 of its own), so the host
cannot use its pid: the zygote sends back a pidfd, which names the process however many
namespaces lie between, and reports its wait status when it ends.
"""

from __future__ import annotations

import os
import select
import signal
import socket
from dataclasses import dataclass
from typing import Protocol

from codeact.sandbox.bridge import KernelProcess
from codeact.sandbox.guest.rlimits import Limits

__all__ = ["DEFAULT_LIMITS", "Identity", "Reaper", "SessionParams", "SessionProcess"]

DEFAULT_LIMITS = Limits(
    address_space=4 << 30, cpu_seconds=3600, file_size=1 << 30, open_files=1024, core=0, processes=128
)
"""A session's rlimits unless configured: `processes` counts its processes and threads (its own
uid and user namespace make that count per session)."""


@dataclass(frozen=True)
class SessionParams:
    """Per-session settings applied inside the fork."""

    limits: Limits = DEFAULT_LIMITS
    tmp_size: int = 256 << 20
    env: tuple[tuple[str, str], ...] = ()
    network: bool = False


@dataclass(frozen=True)
class Identity:
    """Where a session lives: its workspace subdirectory (shared roots) and, as root, its uid."""

    subdir: str | None
    uid: int | None
    gid: int | None


class Reaper(Protocol):
    """What a session needs from its zygote (`zygote.Zygote`): the exit status of its kernel."""

    def exit_status(self, pid: int, wait: float) -> int | None: ...

    def forget(self, pid: int) -> None: ...


class SessionProcess(KernelProcess):
    """A kernel forked by a zygote: signalled through a pidfd, its exit status reported by the zygote."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        pidfd: int,
        pid: int,
        zygote: Reaper,
        stderr: int,
        identity: Identity,
    ) -> None:
        super().__init__(sock)
        self.pidfd: int | None = pidfd
        self.zygote_pid = pid
        self.zygote = zygote
        self.identity = identity
        self._stderr: int | None = stderr
        os.set_blocking(stderr, False)

    def interrupt(self) -> None:
        self._send(signal.SIGINT)

    def terminate(self) -> None:
        """SIGKILL the session (its whole pid namespace) without waiting; safe from any thread."""
        self._send(signal.SIGKILL)

    def kill(self) -> None:
        self._send(signal.SIGKILL)
        pidfd, self.pidfd = self.pidfd, None
        if pidfd is not None:
            try:
                _readable(pidfd, 5.0)  # once the process (and with it its pid namespace) is gone
            finally:
                os.close(pidfd)
        if self._stderr is not None:
            os.close(self._stderr)
            self._stderr = None
        self.channel.close()
        self.zygote.forget(self.zygote_pid)

    def host_pid(self) -> int | None:
        """The kernel's pid as this (the host's) pid namespace sees it; None once it is gone."""
        pidfd = self.pidfd
        if pidfd is None:
            return None
        try:
            with open(f"/proc/self/fdinfo/{pidfd}") as f:
                for line in f:
                    if line.startswith("Pid:"):
                        pid = int(line.split()[1])
                        return pid if pid > 0 else None
        except (OSError, ValueError, IndexError):
            return None
        return None

    def alive(self) -> bool:
        pidfd = self.pidfd
        return pidfd is not None and not _readable(pidfd, 0)

    def exit_reason(self, wait: float = 1.0) -> str | None:
        status = self.zygote.exit_status(self.zygote_pid, wait)
        if status is None:
            return None if self.alive() else "ended (its exit status was not reported)"
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = f"signal {sig}"
            detail = (signal.strsignal(sig) or "").lower()
            if sig == signal.SIGKILL:
                detail = "killed; the sandbox may have run out of memory"
            return f"died with signal {name}" + (f" ({detail})" if detail else "")
        code = os.WEXITSTATUS(status)
        if code == 121:
            return "exited with status 121 (an isolation layer could not be applied)"
        return f"exited with status {code}"

    def stderr_text(self, limit: int = 16_000) -> str:
        if self._stderr is None:
            return ""
        try:
            data = os.read(self._stderr, limit)
        except OSError:
            return ""
        return data.decode("utf-8", "replace")

    def _send(self, sig: int) -> None:
        pidfd = self.pidfd
        if pidfd is None:
            return
        try:
            signal.pidfd_send_signal(pidfd, sig)
        except (ProcessLookupError, PermissionError, OSError):
            pass


def _readable(fd: int, timeout: float) -> bool:
    poller = select.poll()  # not select(): fds past 1024 are common with hundreds of sessions
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(timeout * 1000))
