"""Landlock: a filesystem allowlist (and TCP deny) that a process applies to itself.

Runs inside the sandbox at kernel start-up, so it is stdlib only and imports nothing from
codeact. Landlock is per thread and inherited by new threads and children: apply it while the
process is still single-threaded (before numpy/OpenBLAS start worker threads).

Failures are `OSError`s carrying the syscall's errno (ENOSYS / EOPNOTSUPP: no Landlock); the
host side turns them into `IsolationUnavailable`.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import struct
from dataclasses import dataclass, field

__all__ = ["LandlockPolicy", "LandlockResult", "abi_version", "restrict_self"]

# The three Landlock syscalls have the same numbers on every architecture (unified table).
_SYS_CREATE_RULESET = 444
_SYS_ADD_RULE = 445
_SYS_RESTRICT_SELF = 446
_CREATE_RULESET_VERSION = 1 << 0
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

# Filesystem rights, and the ABI version that introduced each group.
_FS_EXECUTE = 1 << 0
_FS_WRITE_FILE = 1 << 1
_FS_READ_FILE = 1 << 2
_FS_READ_DIR = 1 << 3
_FS_ABI1 = (1 << 13) - 1  # EXECUTE .. MAKE_SYM
_FS_REFER = 1 << 13  # ABI 2
_FS_TRUNCATE = 1 << 14  # ABI 3
_FS_IOCTL_DEV = 1 << 15  # ABI 5
_FS_FILE_ONLY = _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV
_FS_READ_ONLY = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR

_NET_BIND_TCP = 1 << 0  # ABI 4
_NET_CONNECT_TCP = 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
_SCOPE_SIGNAL = 1 << 1


@dataclass(frozen=True)
class LandlockPolicy:
    """What the process may still reach once restricted; everything else is denied.

    Paths are as seen by the restricted process (inside the sandbox). Paths that do not exist
    are skipped and reported, because a missing optional path must not stop the kernel.
    """

    read_only: tuple[str, ...] = ()
    read_write: tuple[str, ...] = ()
    deny_tcp: bool = True
    """Deny TCP bind and connect (ABI >= 4). UDP and unix sockets are not covered: seccomp is."""
    scope: bool = True
    """Deny abstract unix sockets and signals to processes outside the domain (ABI >= 6)."""


@dataclass(frozen=True)
class LandlockResult:
    """What `restrict_self` actually enforced on this kernel."""

    abi: int
    handled_fs: int
    tcp_denied: bool
    scoped: bool
    skipped: tuple[str, ...] = field(default=())


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def _raise_errno(what: str) -> None:
    err = ctypes.get_errno()
    raise OSError(err, f"{what}: {os.strerror(err)}")


def abi_version() -> int:
    """The Landlock ABI this kernel offers: 0 when Landlock is not built in or not enabled."""
    res = _libc().syscall(
        ctypes.c_long(_SYS_CREATE_RULESET), None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION)
    )
    return int(res) if res > 0 else 0


def _handled_fs(abi: int) -> int:
    handled = _FS_ABI1
    if abi >= 2:
        handled |= _FS_REFER
    if abi >= 3:
        handled |= _FS_TRUNCATE
    if abi >= 5:
        handled |= _FS_IOCTL_DEV
    return handled


def _ruleset_attr(handled_fs: int, handled_net: int, scoped: int, abi: int) -> bytes:
    # struct landlock_ruleset_attr grew with the ABI; pass only the fields this kernel knows.
    if abi >= 6:
        return struct.pack("=QQQ", handled_fs, handled_net, scoped)
    if abi >= 4:
        return struct.pack("=QQ", handled_fs, handled_net)
    return struct.pack("=Q", handled_fs)


def _add_path(libc: ctypes.CDLL, ruleset_fd: int, path: str, access: int) -> bool:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            access &= _FS_FILE_ONLY  # directory rights on a file are EINVAL
        attr = ctypes.create_string_buffer(struct.pack("=Qi", access, fd), 12)  # packed struct
        res = libc.syscall(
            ctypes.c_long(_SYS_ADD_RULE),
            ctypes.c_int(ruleset_fd),
            ctypes.c_int(_RULE_PATH_BENEATH),
            attr,
            ctypes.c_uint32(0),
        )
        if res < 0:
            _raise_errno(f"landlock_add_rule({path!r})")
    finally:
        os.close(fd)
    return True


def restrict_self(policy: LandlockPolicy, *, abi: int | None = None) -> LandlockResult:
    """Restrict this thread (and its future threads and children) to `policy`. Irreversible.

    Sets PR_SET_NO_NEW_PRIVS first, as Landlock requires it from an unprivileged process.
    Uses every right the running kernel's ABI knows, so rights newer than the kernel
    (truncate, ioctl on devices, TCP) stay unrestricted on older kernels; the result says so.
    """
    libc = _libc()
    abi = abi_version() if abi is None else abi
    if abi <= 0:
        raise OSError(errno.EOPNOTSUPP, "Landlock is not available on this kernel")
    handled_fs = _handled_fs(abi)
    handled_net = (_NET_BIND_TCP | _NET_CONNECT_TCP) if (policy.deny_tcp and abi >= 4) else 0
    scoped = (_SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL) if (policy.scope and abi >= 6) else 0
    attr_bytes = _ruleset_attr(handled_fs, handled_net, scoped, abi)
    attr = ctypes.create_string_buffer(attr_bytes, len(attr_bytes))
    ruleset_fd = libc.syscall(
        ctypes.c_long(_SYS_CREATE_RULESET), attr, ctypes.c_size_t(len(attr_bytes)), ctypes.c_uint32(0)
    )
    if ruleset_fd < 0:
        _raise_errno("landlock_create_ruleset")
    skipped: list[str] = []
    try:
        for path in policy.read_only:
            if not _add_path(libc, ruleset_fd, path, _FS_READ_ONLY & handled_fs):
                skipped.append(path)
        for path in policy.read_write:
            if not _add_path(libc, ruleset_fd, path, handled_fs):
                skipped.append(path)
        if libc.prctl(ctypes.c_int(_PR_SET_NO_NEW_PRIVS), ctypes.c_ulong(1), 0, 0, 0) != 0:
            _raise_errno("prctl(PR_SET_NO_NEW_PRIVS)")
        if libc.syscall(ctypes.c_long(_SYS_RESTRICT_SELF), ctypes.c_int(ruleset_fd), ctypes.c_uint32(0)) < 0:
            _raise_errno("landlock_restrict_self")
    finally:
        os.close(ruleset_fd)
    return LandlockResult(
        abi=abi,
        handled_fs=handled_fs,
        tcp_denied=bool(handled_net),
        scoped=bool(scoped),
        skipped=tuple(skipped),
    )
