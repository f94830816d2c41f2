"""The zygote: one interpreter per sandbox configuration that forks isolated kernel sessions.

Runs *inside* bubblewrap, launched by the host (`codeact.sandbox.zygote`) as::

    python -I -B .../guest/confine.py '<policy>' .../guest/zygote.py --control FD '<spec JSON>'

It imports the kernel and the configured heavy modules once, then serves `spawn` requests on
its control socket (a SOCK_SEQPACKET socketpair; each message is one JSON object, file
descriptors ride along as SCM_RIGHTS). The zygote itself never runs model code, so it keeps
what it needs to build sessions: in root mode uid 0 with only CAP_SETUID/CAP_SETGID, and no
seccomp filter (it must create namespaces). Each session is built in two forks:

- **helper** (forked from the zygote): in root mode, switch to the session's own unprivileged
  uid/gid; then `unshare(USER | PID | NS | IPC)`: a user namespace in which the uid is mapped to the
  sandbox uid, a pid namespace whose first process will be the kernel, its own SysV IPC, and a mount namespace in
  which the session's directory is bound over `/workspace` (hiding its siblings) and /tmp and
  /dev/shm are fresh size-capped tmpfs. It forks the kernel, reports its pid and exits.
- **kernel** (pid 1 of the new pid namespace): drops every capability, waits until the
  zygote has reaped the helper (so the zygote is its parent) and sets PR_SET_PDEATHSIG,
  becomes non-dumpable,
  raises its OOM score, sets rlimits (RLIMIT_NPROC counts per uid and user namespace, so it is
  per session), applies Landlock and seccomp, and runs the kernel (`kernel.py`). When it dies, the kernel
  (Linux) kills every process left in its pid namespace: a session's process tree cannot
  outlive it, and killing the kernel is killing the session.

The zygote is a child subreaper, so each kernel is reparented to it: it reaps them and tells
the host how they ended (`exited` messages). Stdlib only; sibling modules are loaded by path.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import select
import signal
import socket
import stat
import sys
from typing import Any

if not __package__:  # run by path (`confine.py ... .../guest/zygote.py`): siblings as a private package
    sys.modules.setdefault("_codeact_guest", type(sys)("_codeact_guest")).__path__ = [  # type: ignore[attr-defined]
        os.path.dirname(os.path.abspath(__file__))
    ]
    __package__ = "_codeact_guest"

__all__ = ["MAX_MESSAGE", "SessionForker", "main", "recv_message", "send_message"]

MAX_MESSAGE = 1 << 16

_CLONE_NEWNS = 0x00020000
_CLONE_NEWIPC = 0x08000000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWPID = 0x20000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_BIND, _MS_REC, _MS_PRIVATE = 4096, 16384, 1 << 18
_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36
_CAP_VERSION_3 = 0x20080522
_SUBDIR = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,100}")
_DEFAULT_PRELOAD = (
    "json", "re", "math", "random", "datetime", "collections", "itertools", "functools",
    "pickle", "traceback", "linecache", "typing", "dataclasses", "pathlib", "subprocess",
    "statistics", "decimal", "fractions", "textwrap", "string", "csv", "io", "base64", "hashlib",
)  # fmt: skip


# -- messages (also used by the host) ---------------------------------------------------------


def send_message(sock: socket.socket, message: dict[str, Any], fds: tuple[int, ...] = ()) -> None:
    """One JSON object as one SEQPACKET message, with `fds` attached."""
    data = json.dumps(message).encode()
    if fds:
        socket.send_fds(sock, [data], list(fds))
    else:
        sock.sendall(data)


def recv_message(sock: socket.socket, max_fds: int = 4) -> tuple[dict[str, Any] | None, list[int]]:
    """The next message and the fds that came with it; (None, []) when the peer has gone."""
    data, fds, flags, _ = socket.recv_fds(sock, MAX_MESSAGE, max_fds)
    if not data:
        for fd in fds:
            os.close(fd)
        return None, []
    if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
        for fd in fds:
            os.close(fd)
        raise ValueError("a control message was truncated")
    try:
        message = json.loads(data)
    except (ValueError, RecursionError) as exc:  # RecursionError: deeply nested arrays
        for fd in fds:
            os.close(fd)
        raise ValueError(f"a control message that is not JSON ({type(exc).__name__})") from None
    if not isinstance(message, dict):
        for fd in fds:
            os.close(fd)
        raise ValueError("a control message that is not a JSON object")  # noqa: TRY004 - a protocol error
    return message, fds


# -- system calls -----------------------------------------------------------------------------


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    return libc


_LIBC = _libc()


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _prctl(option: int, value: int) -> None:
    _check(_LIBC.prctl(ctypes.c_int(option), ctypes.c_ulong(value), 0, 0, 0), f"prctl({option})")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    _check(
        _LIBC.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            flags,
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _drop_capabilities() -> None:
    """Empty the effective, permitted and inheritable sets (this also empties the ambient set)."""
    header = (ctypes.c_uint32 * 2)(_CAP_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    _check(_LIBC.capset(header, data), "capset")


class _IsolationFailed(OSError):
    """The helper could not build the session's namespaces, uid or mounts."""


def _close_except(keep: set[int]) -> None:
    """Close every fd above 2 that is not in `keep` (the zygote's control socket above all)."""
    low = 3
    for fd in sorted(k for k in keep if k >= 3):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 20)


# -- the zygote -------------------------------------------------------------------------------


class SessionForker:
    """The control loop: spawn sessions on request, report how they end."""

    def __init__(self, control: socket.socket, spec: dict[str, Any], layers: dict[str, Any]) -> None:
        self.control = control
        self.spec = spec
        self.layers = layers
        self.kernels: set[int] = set()

    def serve(self) -> None:
        rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wfd)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so the wakeup fd is written
        poller = select.poll()
        poller.register(self.control.fileno(), select.POLLIN)
        poller.register(rfd, select.POLLIN)
        while True:
            for fd, _ in poller.poll():
                if fd == rfd:
                    while True:
                        try:
                            if not os.read(rfd, 512):
                                break
                        except BlockingIOError:
                            break
                    self._reap()
                    continue
                message, fds = recv_message(self.control)
                if message is None:
                    os._exit(0)  # the host is gone; the pid namespace takes every session with us
                try:
                    self._handle(message, fds)
                finally:
                    for passed in fds:
                        try:
                            os.close(passed)
                        except OSError:
                            pass

    def _handle(self, message: dict[str, Any], fds: list[int]) -> None:
        op = message.get("op")
        if op == "shutdown":
            os._exit(0)
        if op != "spawn":
            return
        try:
            pid = self._spawn(message.get("session") or {}, fds)
        except _IsolationFailed as exc:
            send_message(self.control, {"op": "failed", "id": message.get("id"), "kind": "isolation", "error": f"{exc}"})
            return
        except Exception as exc:  # noqa: BLE001 - any failure goes back to the host as text
            send_message(self.control, {"op": "failed", "id": message.get("id"), "kind": "error", "error": f"{exc}"})
            return
        pidfd = os.pidfd_open(pid)
        try:
            send_message(self.control, {"op": "spawned", "id": message.get("id"), "pid": pid}, (pidfd,))
        finally:
            os.close(pidfd)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self.kernels:
                self.kernels.discard(pid)
                send_message(self.control, {"op": "exited", "pid": pid, "status": status})

    def _spawn(self, session: dict[str, Any], fds: list[int]) -> int:
        """Fork the helper, which forks the kernel; return the kernel's pid (in our namespace)."""
        if len(fds) != session.get("fds"):
            raise ValueError(f"expected {session.get('fds')} file descriptors, got {len(fds)}")
        subdir = session.get("subdir")
        if subdir is not None and (not isinstance(subdir, str) or not _SUBDIR.fullmatch(subdir)):
            raise ValueError(f"bad session directory name {subdir!r}")
        r, w = os.pipe2(os.O_CLOEXEC)
        adopted, adopt = os.pipe2(os.O_CLOEXEC)  # closed once the helper is reaped (see _kernel)
        helper = os.fork()
        if helper == 0:
            try:
                os.close(r)
                self.control.detach()  # the fd is closed with the others below
                _helper(self.spec, session, fds, w, adopted, self.layers)
            except BaseException as exc:  # noqa: BLE001
                try:
                    os.write(w, f"error {type(exc).__name__}: {exc}".encode())
                finally:
                    os._exit(1)
        os.close(w)
        os.close(adopted)
        chunks = []
        while chunk := os.read(r, 4096):
            chunks.append(chunk)
        os.close(r)
        try:
            os.waitpid(helper, 0)
        except ChildProcessError:
            pass
        os.close(adopt)
        report = b"".join(chunks).decode("utf-8", "replace")
        if not report.startswith("ok "):
            raise _IsolationFailed(report.removeprefix("error ") or "the session helper died")
        pid = int(report[3:])
        self.kernels.add(pid)
        return pid


def _helper(
    spec: dict[str, Any], session: dict[str, Any], fds: list[int], report: int, adopted: int, layers: dict
) -> None:
    """In the first fork: own uid, new namespaces, private mounts; then fork the kernel."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    _close_except({report, adopted, *fds})
    inner_uid, inner_gid = spec["inner_uid"], spec["inner_gid"]
    if spec["root_mode"]:
        uid, gid = int(session["uid"]), int(session["gid"])
        if uid <= 0 or gid <= 0:
            raise ValueError("a root-mode session needs an unprivileged uid and gid")
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    outer_uid, outer_gid = os.getuid(), os.getgid()
    _prctl(_PR_SET_DUMPABLE, 1)  # the uid change made /proc/self root-owned; we must write our maps
    # Its own IPC namespace too: SysV shared memory, semaphores, message queues and POSIX message
    # queues are then private to the session and freed with it (the last process leaving frees them).
    _check(
        _LIBC.unshare(_CLONE_NEWUSER | _CLONE_NEWPID | _CLONE_NEWNS | _CLONE_NEWIPC),
        "unshare(user, pid, mount, IPC namespaces)",
    )
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{inner_uid} {outer_uid} 1")
    _write("/proc/self/gid_map", f"{inner_gid} {outer_gid} 1")
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
    if session.get("subdir"):
        _mount(f"/workspace/{session['subdir']}", "/workspace", None, _MS_BIND)
    held = _hold_tmp_paths([*spec["read_only"], *spec["read_write"]])
    size = int(session["tmp_size"])
    for target in ("/tmp", "/dev/shm"):
        _mount("tmpfs", target, "tmpfs", _MS_NOSUID | _MS_NODEV, f"size={size},mode=1777")
    _restore_tmp_paths(held, spec.get("links") or [])
    kernel = os.fork()
    if kernel == 0:
        os.close(report)
        try:
            _kernel(spec, session, fds, layers, adopted)
        except BaseException as exc:  # noqa: BLE001 - the host reads this from the session's stderr
            try:
                os.write(2, f"codeact-session: {type(exc).__name__}: {exc}\n".encode())
            finally:
                os._exit(121)
    os.close(adopted)
    os.write(report, f"ok {kernel}".encode())
    os._exit(0)


def _hold_tmp_paths(paths: list[str]) -> list[tuple[str, int]]:
    """O_PATH handles on the bound paths under /tmp (a venv or checkout there), before /tmp is replaced.

    The session's private /tmp would hide them: the interpreter, its site-packages and codeact
    itself must stay visible wherever they live.
    """
    under = sorted({os.path.normpath(p) for p in paths if os.path.normpath(p).startswith("/tmp/")})
    tops = [p for p in under if not any(p.startswith(q + "/") for q in under)]
    held = []
    for path in tops:
        try:
            held.append((path, os.open(path, os.O_PATH | os.O_CLOEXEC)))
        except FileNotFoundError:
            continue
    return held


def _restore_tmp_paths(held: list[tuple[str, int]], links: list[list[str]]) -> None:
    """Bind the held paths back at the same place in the new /tmp (recursively: they keep read-only)."""
    for path, fd in held:
        try:
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                os.makedirs(path, 0o755, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
            _mount(f"/proc/self/fd/{fd}", path, None, _MS_BIND | _MS_REC)
        finally:
            os.close(fd)
    for target, dest in links:
        if os.path.normpath(dest).startswith("/tmp/") and not os.path.lexists(dest):
            os.makedirs(os.path.dirname(dest), 0o755, exist_ok=True)
            os.symlink(target, dest)


def _kernel(spec: dict[str, Any], session: dict[str, Any], fds: list[int], layers: dict, adopted: int) -> None:
    """In the second fork, pid 1 of the session: confine, then serve the host as the kernel."""
    bridge, stderr = fds[0], fds[1]
    network = fds[2] if len(fds) > 2 else None
    os.setsid()
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(stderr, 2)
    os.close(null)
    os.close(stderr)
    _drop_capabilities()
    os.read(adopted, 1)  # EOF once the zygote has reaped the helper: the zygote is now our parent
    os.close(adopted)
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # so we die with it, besides dying with our namespace
    try:
        _write("/proc/self/oom_score_adj", "1000")  # under memory pressure, sessions die first
    except OSError:
        pass
    _prctl(_PR_SET_DUMPABLE, 0)
    limits = session.get("limits")
    if limits is not None:
        layers["apply_limits"](layers["Limits"](**limits))
    os.chdir("/workspace")
    os.environ.update({"PWD": "/workspace", "HOME": "/workspace", "TMPDIR": "/tmp"})
    os.environ.update({str(k): str(v) for k, v in (session.get("env") or {}).items()})
    abi = layers["abi_version"]()
    if abi > 0:
        policy = layers["LandlockPolicy"](
            read_only=tuple(spec["read_only"]),
            read_write=("/workspace", "/tmp", "/dev/shm", "/dev/null", "/dev/full", *spec["read_write"]),
        )
        layers["restrict_self"](policy, abi=abi)
    elif spec.get("require_landlock"):
        raise OSError("Landlock is required but this kernel does not offer it")
    layers["install_seccomp"]()
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:  # forked sessions would otherwise share one random stream
        numpy_random.seed()
    if network is not None:
        layers["netshim"].install(network)
    sys.path.insert(0, "")  # like `python script.py`: model code imports from the workspace
    layers["kernel"].main(["--fd", str(bridge), "--init"])
    os._exit(0)


# -- start-up ---------------------------------------------------------------------------------


def _layers() -> dict[str, Any]:
    """The confinement layers and the kernel, imported once here so every fork has them loaded."""
    from . import kernel, netshim
    from .landlock import LandlockPolicy, abi_version, restrict_self
    from .rlimits import Limits, apply_limits
    from .seccomp import install

    return {
        "LandlockPolicy": LandlockPolicy,
        "abi_version": abi_version,
        "restrict_self": restrict_self,
        "Limits": Limits,
        "apply_limits": apply_limits,
        "install_seccomp": install,
        "kernel": kernel,
        "netshim": netshim,
    }


def _preload(names: list[str]) -> dict[str, str]:
    import importlib

    failed = {}
    for name in (*_DEFAULT_PRELOAD, *names):
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - reported to the host, which decides
            if name in names:
                failed[name] = f"{type(exc).__name__}: {exc}"
    return failed


def main(argv: list[str] | None = None) -> None:
    """`zygote.py --control FD SPEC_JSON`."""
    args = sys.argv[1:] if argv is None else argv
    try:
        control_fd = int(args[args.index("--control") + 1])
        spec = json.loads(args[args.index("--control") + 2])
    except (ValueError, IndexError):
        sys.stderr.write("usage: zygote.py --control FD SPEC_JSON\n")
        raise SystemExit(2) from None
    os.chdir("/")
    control = socket.socket(fileno=control_fd)
    control.setblocking(True)
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    layers = _layers()
    failed = _preload(list(spec.get("preload") or ()))
    import gc

    gc.collect()
    gc.freeze()  # keep the preloaded objects' pages shared: the collector will not touch them
    send_message(
        control,
        {"op": "ready", "pid": os.getpid(), "python": sys.version.split()[0], "preload_errors": failed},
    )
    SessionForker(control, spec, layers).serve()


if __name__ == "__main__":
    main()
