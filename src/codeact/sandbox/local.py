"""The isolated sandbox, and the default: each kernel is a session forked by a zygote inside bubblewrap.

Layers, from the outside in (see README "Security model"):
- bubblewrap: new mount, pid, network, IPC and UTS namespaces (and a user namespace when the
  host is not root), all capabilities dropped, a cleared environment; only the interpreter,
  its site-packages, codeact's own package, the loader's libraries and the paths you configure
  are bound, read-only;
- per session, made by the zygote: its own uid when the host is root (never uid 0), its own
  user, pid and mount namespaces, its workspace bound at /workspace with its siblings hidden,
  private size-capped /tmp and /dev/shm;
- inside the kernel: no capabilities, non-dumpable, rlimits (memory, CPU, file size, open files,
  processes, no core dumps), Landlock (filesystem allowlist, TCP bind/connect denied, signals
  and abstract sockets scoped), seccomp (no socket(), ptrace, mount, namespaces, bpf, keyctl,
  io_uring, perf_event_open, userfaultfd, ...);
- on the host: preemptive timeouts, a disk quota for the workspace, and network access only
  through an allowlist that the host enforces (`NetworkPolicy`).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import stat
import threading
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

from codeact.errors import ConfigError, IsolationUnavailable, SandboxError
from codeact.sandbox import _quota
from codeact.sandbox._sessiondirs import remove_tree
from codeact.sandbox.base import BridgeLimits, ExecError, Execution, Sandbox, ToolListener
from codeact.sandbox.bridge import KernelClient, KernelProcess
from codeact.sandbox.guest.rlimits import Limits
from codeact.sandbox.network import Connection, Egress, NetworkPolicy
from codeact.sandbox.probe import probe
from codeact.sandbox.session import DEFAULT_LIMITS, Identity, SessionParams, SessionProcess
from codeact.sandbox.zygote import PROCESS_HINT, Zygote, ZygoteSpec, acquire, release
from codeact.tools.dispatch import ToolDispatcher
from codeact.tools.tool import Tool, to_tools

__all__ = ["DEFAULT_LIMITS", "Limits", "LocalSandbox", "NetworkPolicy"]

_GiB = 1 << 30
_MAX_CONNECTION_RECORDS = 1_000
_CA_PATHS = ("/etc/ssl", "/usr/share/ca-certificates", "/usr/lib/ssl", "/etc/pki/tls", "/etc/ca-certificates")


class LocalSandbox(Sandbox):
    """Runs model code in an isolated, persistent kernel on this machine, without Docker.

    It refuses to start (`IsolationUnavailable`) where the machine cannot isolate; it never
    falls back to running the code unisolated. `codeact doctor` shows what this machine offers.

    Args:
        timeout: default seconds per `execute` before the step is interrupted.
        max_output_chars: cap for stdout, stderr and the result repr of one step.
        workspace: a host directory the code sees as /workspace; it and the files written there
            stay after `close()`. As root, the code may add files and directories but not change,
            rename or remove those already there (the directory stays its owner's, with the sticky
            bit and the session's group for the session's life), and what it wrote is given back
            to the directory's owner. Default: a fresh private directory, removed on close.
        network: None (no network at all), or a `NetworkPolicy` or list of allowlist entries
            such as ["api.github.com:443"]: TCP connections to those, made by the host.
        preload: modules imported once in the zygote, e.g. ("numpy", "pandas"), so every
            session starts with them loaded.
        ro_paths: extra host paths visible read-only at the same path; rw_paths: read-write.
        limits: rlimits of the kernel (`DEFAULT_LIMITS`: 4 GiB address space, 1 h CPU, 1 GiB
            files, 1024 fds, 128 processes/threads, no core dumps).
        tmp_size: size of the private /tmp and of /dev/shm.
        disk_quota: bytes the workspace may grow by; past it the session is stopped.
        env: extra environment variables for the kernel (nothing of the host's is passed).
        python: another interpreter to run the kernel (it must be able to run codeact's kernel).
        interrupt_grace: seconds a timed-out step gets after SIGINT before the session is killed.
        bridge_limits: what the code can make the host do and keep through tool calls
            (`BridgeLimits`: calls per step and session, a tool's own time limit, how much of
            the arguments records keep); default `BridgeLimits()`.
    """

    kind = "local"

    def __init__(
        self,
        *,
        timeout: float = 30.0,
        max_output_chars: int = 20_000,
        workspace: str | os.PathLike[str] | None = None,
        network: NetworkPolicy | Iterable[str] | None = None,
        preload: Iterable[str] = (),
        ro_paths: Iterable[str | os.PathLike[str]] = (),
        rw_paths: Iterable[str | os.PathLike[str]] = (),
        limits: Limits | None = None,
        tmp_size: int = 256 << 20,
        disk_quota: int | None = 4 * _GiB,
        env: Mapping[str, str] | None = None,
        python: str | None = None,
        interrupt_grace: float = 2.0,
        bridge_limits: BridgeLimits | None = None,
    ) -> None:
        if not timeout > 0:
            raise ConfigError(f"timeout must be positive, got {timeout!r}")
        if not (isinstance(max_output_chars, int) and max_output_chars > 0):
            raise ConfigError(f"max_output_chars must be a positive int, got {max_output_chars!r}")
        if not (isinstance(tmp_size, int) and tmp_size >= 1 << 20):
            raise ConfigError(f"tmp_size must be at least 1 MiB (in bytes), got {tmp_size!r}")
        if disk_quota is not None and not (isinstance(disk_quota, int) and disk_quota > 0):
            raise ConfigError(f"disk_quota must be a positive number of bytes or None, got {disk_quota!r}")
        if limits is not None and not isinstance(limits, Limits):
            raise ConfigError("limits must be a codeact.sandbox.local.Limits")
        report = probe()
        if not report.usable:
            raise IsolationUnavailable(
                "The isolated sandbox cannot run on this machine: "
                + "; ".join(report.missing)
                + ". Run `codeact doctor` for details. "
                + PROCESS_HINT
            )
        self.timeout = timeout
        self.network = NetworkPolicy.coerce(network)
        self.disk_quota = disk_quota
        self._bwrap = str(report.bwrap_path)
        ro = [_absolute(p, "ro_paths") for p in ro_paths]
        if self.network is not None:
            ro += [p for p in _CA_PATHS if os.path.exists(p) and p not in ro]
        self._explicit = Path(workspace).resolve() if workspace is not None else None
        if self._explicit is not None:
            self._explicit.mkdir(parents=True, exist_ok=True)
        self._spec = ZygoteSpec(
            root=str(self._explicit) if self._explicit is not None else None,
            python=python,
            preload=tuple(preload),
            ro_paths=tuple(ro),
            rw_paths=tuple(_absolute(p, "rw_paths") for p in rw_paths),
        )
        self._params = SessionParams(
            limits=limits or DEFAULT_LIMITS,
            tmp_size=tmp_size,
            env=tuple(sorted((str(k), str(v)) for k, v in (env or {}).items())),
            network=self.network is not None,
        )
        self._client = KernelClient(
            self._launch,
            dispatcher=ToolDispatcher(),
            max_output_chars=max_output_chars,
            interrupt_grace=interrupt_grace,
            limits=bridge_limits,
        )
        self._lock = threading.RLock()
        self._zygote: Zygote | None = None
        self._identity: Identity | None = None
        self._first: SessionProcess | None = None
        self._owner: tuple[int, int, int] | None = None
        self._egress: Egress | None = None
        self._watch: _quota.Watch | None = None
        self._over_quota: int | None = None
        self._connections: list[Connection] = []
        self._closed = False

    # Public surface ---------------------------------------------------------------------------
    @property
    def workspace(self) -> Path:
        """The host directory the code sees as /workspace (a session is reserved on first use)."""
        with self._lock:
            self._check_open()
            if self._identity is None:
                self._first = self._new_session()
            assert self._zygote is not None and self._identity is not None
            return Path(self._zygote.workspace_of(self._identity))

    @property
    def dispatcher(self) -> ToolDispatcher:
        """Runs the tools; add policies here."""
        return self._client.dispatcher

    @property
    def connections(self) -> list[Connection]:
        """Every network connection the code asked for, allowed or not (with a `NetworkPolicy`).

        The first 1,000 are kept; `Egress` caps how many a session may ask for."""
        return list(self._connections)

    def start(self, tools: Mapping[str, Tool], *, on_tool_call: ToolListener | None = None) -> None:
        self._check_open()
        self._client.set_tools(to_tools(tools))
        self._client.dispatcher.listener = on_tool_call
        self._client.start()

    def set_authorized_imports(self, names: Collection[str] | None) -> None:
        self._client.set_authorized_imports(names)

    def execute(self, code: str, *, timeout: float | None = None) -> Execution:
        self._check_open()
        if not isinstance(code, str):
            raise ConfigError(f"code must be a str, not {type(code).__name__}")
        execution = self._client.execute(code, timeout=self.timeout if timeout is None else timeout)
        grown, self._over_quota = self._over_quota, None
        if grown is None:
            return execution
        message = (
            f"the workspace grew by {grown / 2**20:,.0f} MiB, past the sandbox's disk quota of "
            f"{(self.disk_quota or 0) / 2**20:,.0f} MiB, so the session was stopped; all variables are "
            "lost. Delete files from the workspace before writing more"
        )
        return dataclasses.replace(
            execution, error=ExecError("DiskQuotaExceeded", message, ""), state_lost=True, is_final=False
        )

    def close(self) -> None:
        """Stop the kernel, give the workspace back (or remove the private one). Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._client.close()
        with self._lock:
            first, self._first = self._first, None
            if first is not None:
                first.kill()
            if self._egress is not None:
                self._egress.close()
            if self._watch is not None:
                _quota.unwatch(self._watch)
            zygote, identity = self._zygote, self._identity
            if zygote is not None and identity is not None:
                if self._explicit is None:
                    remove_tree(zygote.workspace_of(identity))
                elif self._owner is not None and identity.uid is not None:
                    _give_back(str(self._explicit), identity.uid, self._owner)
            if zygote is not None:
                release(zygote)
                self._zygote = None

    # Sessions ---------------------------------------------------------------------------------
    def _launch(self) -> KernelProcess:
        with self._lock:
            self._check_open()
            if self._first is not None:
                session, self._first = self._first, None
            elif self._identity is None:
                session = self._new_session()
                self._first = None
            else:
                session = self._spawn(self._identity)
            return session

    def _new_session(self) -> SessionProcess:
        """The first session: a pooled one where possible; fixes the workspace and uid for good."""
        zygote = self._zygote_for_launch()
        if self._params.network or not zygote.spec.shared:
            identity = zygote.new_identity()
            if self._explicit is not None and identity.uid is not None:
                self._owner = _lend(str(self._explicit), identity.gid or identity.uid)
            session = self._spawn(identity)
        else:
            session = zygote.take(self._params)
        self._identity = session.identity
        if self.disk_quota is not None:
            self._watch = _quota.watch(
                zygote.workspace_of(session.identity),
                self.disk_quota,
                self._quota_exceeded,
                holders=self._session_pids,
            )
        return session

    def _session_pids(self) -> list[int]:
        """The host pids of the current session's processes (their unlinked open files count)."""
        kernel = self._client.kernel
        if kernel is None:
            kernel = self._first
        leader = kernel.host_pid() if isinstance(kernel, SessionProcess) else None
        return _quota.session_pids(leader) if leader is not None else []

    def _spawn(self, identity: Identity) -> SessionProcess:
        zygote = self._zygote_for_launch()
        channel = None
        if self.network is not None:
            host_end, channel = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            if self._egress is not None:
                self._egress.close()
            self._egress = Egress(self.network, host_end, on_connection=self._record_connection)
        try:
            return zygote.spawn(self._params, identity, network=channel)
        finally:
            if channel is not None:
                channel.close()

    def _zygote_for_launch(self) -> Zygote:
        if self._zygote is not None and not self._zygote.alive:
            release(self._zygote)
            self._zygote = None
        if self._zygote is None:
            self._zygote = acquire(self._spec, bwrap=self._bwrap)
        return self._zygote

    def _record_connection(self, connection: Connection) -> None:
        if len(self._connections) < _MAX_CONNECTION_RECORDS:
            self._connections.append(connection)

    def _quota_exceeded(self, grown: int) -> None:
        self._over_quota = grown
        kernel = self._client.kernel
        if isinstance(kernel, SessionProcess):
            kernel.terminate()

    def _check_open(self) -> None:
        if self._closed:
            raise SandboxError("this LocalSandbox is closed; create a new one")

    def __repr__(self) -> str:
        where = str(self._explicit) if self._explicit is not None else "private"
        net = "off" if self.network is None else f"allow {list(self.network.allow)}"
        return f"LocalSandbox(workspace={where!r}, network={net}, timeout={self.timeout:g})"


def _absolute(path: str | os.PathLike[str], what: str) -> str:
    p = os.path.abspath(os.fspath(path))
    if not os.path.exists(p):
        raise ConfigError(f"LocalSandbox {what} entry {str(path)!r} does not exist")
    return p


def _lend(path: str, gid: int) -> tuple[int, int, int]:
    """As root: let the session's group add entries to `path`, but not touch those already there.

    The directory stays its owner's; its group becomes the session's, with rwx and the sticky
    bit, so the session may create files and directories but may not unlink, rename or replace
    an entry it does not own (and existing files keep their own modes). Returns (uid, gid, mode)
    to restore.
    """
    st = os.stat(path)
    mode = stat.S_IMODE(st.st_mode)
    os.chown(path, -1, gid)
    os.chmod(path, (mode & ~0o070) | 0o070 | stat.S_ISVTX)
    return st.st_uid, st.st_gid, mode


def _give_back(path: str, uid: int, owner: tuple[int, int, int]) -> None:
    """As root: hand what the session's uid owns under `path` back to the directory's owner.

    Never follows symlinks (the code could have pointed one at a host file) and only touches
    entries that the session's own uid owns; the directory gets its group and mode back.
    """
    owner_uid, owner_gid, mode = owner
    for _, dirs, files, dir_fd in os.fwalk(path, follow_symlinks=False):
        for name in dirs + files:
            try:
                if os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_uid == uid:
                    os.chown(name, owner_uid, owner_gid, dir_fd=dir_fd, follow_symlinks=False)
            except OSError:
                pass
    try:
        os.chown(path, owner_uid, owner_gid, follow_symlinks=False)
        os.chmod(path, mode, follow_symlinks=False)
    except OSError:
        pass
