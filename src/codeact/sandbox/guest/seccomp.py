"""A seccomp-BPF deny-list that a process installs on itself: no new sockets, no kernel attack surface.

Runs inside the sandbox at kernel start-up, so it is stdlib only and imports nothing from
codeact. Denied calls fail with EPERM (model code sees a clear `PermissionError`), not a kill;
only a syscall from a foreign ABI (i386 `int 0x80`, x32) kills the process, since no Python
code issues those.

What the filter checks, in order:
- the architecture (x86_64, aarch64), and on x86_64 the x32 bit;
- `socket()` for every family: fds for the network or host unix sockets cannot be created;
  and `connect()`, `bind()`, `listen()`, so a socket handed in by the host (the network
  allowlist) cannot be disconnected and pointed elsewhere, nor serve;
  `socketpair()` stays allowed for AF_UNIX stream/seqpacket pairs (asyncio, multiprocessing and
  the inherited bridge socket keep working); datagram pairs are denied because `sendto()` on one
  can reach a named unix socket;
- `clone()` with any CLONE_NEW* flag (user namespaces would hand back capabilities), and
  `clone3()` returns ENOSYS so libc falls back to the checkable `clone()`;
- `ioctl(TIOCSTI / TIOCLINUX)`, which inject keystrokes into a terminal;
- a fixed list of calls model code never needs (`DENIED_SYSCALLS`).
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

__all__ = ["DENIED_SYSCALLS", "SUPPORTED_ARCHES", "build_filter", "install"]

DENIED_SYSCALLS: tuple[str, ...] = (
    "socket", "connect", "bind", "listen",
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp",
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
    "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
    "open_by_handle_at", "name_to_handle_at",
    "bpf", "perf_event_open", "userfaultfd",
    "keyctl", "add_key", "request_key",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "reboot", "swapon", "swapoff", "acct", "quotactl", "quotactl_fd", "syslog", "vhangup",
    "lookup_dcookie", "nfsservctl", "iopl", "ioperm", "uselib", "_sysctl",
)  # fmt: skip

# Syscall numbers from the kernel's unistd tables. aarch64 uses the generic table; calls absent
# from an architecture (iopl on aarch64) are simply not listed for it.
_X86_64 = {
    "socket": 41, "socketpair": 53, "connect": 42, "bind": 49, "listen": 50, "ioctl": 16, "clone": 56, "clone3": 435,
    "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "pidfd_getfd": 438, "kcmp": 312,
    "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "unshare": 272, "setns": 308,
    "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "move_mount": 429,
    "open_tree": 428, "mount_setattr": 442, "open_by_handle_at": 304, "name_to_handle_at": 303,
    "bpf": 321, "perf_event_open": 298, "userfaultfd": 323,
    "keyctl": 250, "add_key": 248, "request_key": 249,
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "kexec_load": 246, "kexec_file_load": 320, "init_module": 175, "finit_module": 313,
    "delete_module": 176, "reboot": 169, "swapon": 167, "swapoff": 168, "acct": 163,
    "quotactl": 179, "quotactl_fd": 443, "syslog": 103, "vhangup": 153, "lookup_dcookie": 212,
    "nfsservctl": 180, "iopl": 172, "ioperm": 173, "uselib": 134, "_sysctl": 156,
    "seccomp": 317,
}  # fmt: skip
_AARCH64 = {
    "socket": 198, "socketpair": 199, "connect": 203, "bind": 200, "listen": 201, "ioctl": 29, "clone": 220, "clone3": 435,
    "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "pidfd_getfd": 438, "kcmp": 272,
    "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51, "unshare": 97, "setns": 268,
    "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "move_mount": 429,
    "open_tree": 428, "mount_setattr": 442, "open_by_handle_at": 265, "name_to_handle_at": 264,
    "bpf": 280, "perf_event_open": 241, "userfaultfd": 282,
    "keyctl": 219, "add_key": 217, "request_key": 218,
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "kexec_load": 104, "kexec_file_load": 294, "init_module": 105, "finit_module": 273,
    "delete_module": 106, "reboot": 142, "swapon": 224, "swapoff": 225, "acct": 89,
    "quotactl": 60, "quotactl_fd": 443, "syslog": 116, "vhangup": 58, "lookup_dcookie": 18,
    "nfsservctl": 42,
    "seccomp": 277,
}  # fmt: skip
# AUDIT_ARCH_*: ELF machine | 64-bit | little-endian.
_ARCHES = {"x86_64": (0xC000003E, _X86_64), "aarch64": (0xC00000B7, _AARCH64)}
SUPPORTED_ARCHES: tuple[str, ...] = tuple(_ARCHES)
_X32_SYSCALL_BIT = 0x40000000

# Classic BPF opcodes and seccomp return values.
_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_JSET_K = 0x45  # BPF_JMP | BPF_JSET | BPF_K
_AND_K = 0x54  # BPF_ALU | BPF_AND | BPF_K
_RET_K = 0x06  # BPF_RET | BPF_K
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
_RET_ALLOW = 0x7FFF0000
_OFF_NR, _OFF_ARCH = 0, 4


def _arg_lo(i: int) -> int:
    # Low 32 bits of args[i] in struct seccomp_data (both supported arches are little-endian).
    return 16 + 8 * i


_CLONE_NS_FLAGS = (
    0x00020000  # CLONE_NEWNS
    | 0x02000000  # CLONE_NEWCGROUP
    | 0x04000000  # CLONE_NEWUTS
    | 0x08000000  # CLONE_NEWIPC
    | 0x10000000  # CLONE_NEWUSER
    | 0x20000000  # CLONE_NEWPID
    | 0x40000000  # CLONE_NEWNET
)
_AF_UNIX = 1
_SOCK_TYPE_MASK = 0xF
_SOCK_STREAM, _SOCK_SEQPACKET = 1, 5
_TIOCSTI, _TIOCLINUX = 0x5412, 0x541C
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_SECCOMP_SET_MODE_FILTER = 1
_SECCOMP_FILTER_FLAG_TSYNC = 1


def _ins(code: int, k: int = 0, jt: int = 0, jf: int = 0) -> tuple[int, int, int, int]:
    return (code, jt, jf, k)


def _ret(value: int) -> tuple[int, int, int, int]:
    return _ins(_RET_K, value)


def _errno(value: int) -> tuple[int, int, int, int]:
    return _ret(_RET_ERRNO | value)


def _block(nr: int, body: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """`if nr == <nr>: <body>` where body ends in returns; falls through otherwise (A still = nr)."""
    return [_ins(_JEQ_K, nr, 0, len(body)), *body]


def build_filter(arch: str | None = None) -> bytes:
    """The filter program as an array of `struct sock_filter`, for `arch` (default: this machine)."""
    arch = arch or os.uname().machine
    if arch not in _ARCHES:
        raise OSError(errno.ENOTSUP, f"seccomp filter: unsupported architecture {arch!r}")
    audit_arch, table = _ARCHES[arch]
    eperm = _errno(errno.EPERM)
    prog = [
        _ins(_LD_W_ABS, _OFF_ARCH),
        _ins(_JEQ_K, audit_arch, 1, 0),
        _ret(_RET_KILL_PROCESS),
        _ins(_LD_W_ABS, _OFF_NR),
    ]
    if arch == "x86_64":
        prog += [_ins(_JGE_K, _X32_SYSCALL_BIT, 0, 1), _ret(_RET_KILL_PROCESS)]
    # Argument checks. Each block reloads the accumulator, so it ends in returns only.
    prog += _block(table["clone"], [
        _ins(_LD_W_ABS, _arg_lo(0)),
        _ins(_JSET_K, _CLONE_NS_FLAGS, 0, 1),
        eperm,
        _ret(_RET_ALLOW),
    ])  # fmt: skip
    prog += _block(table["clone3"], [_errno(errno.ENOSYS)])
    prog += _block(table["socketpair"], [
        _ins(_LD_W_ABS, _arg_lo(0)),
        _ins(_JEQ_K, _AF_UNIX, 1, 0),
        eperm,
        _ins(_LD_W_ABS, _arg_lo(1)),
        _ins(_AND_K, _SOCK_TYPE_MASK),
        _ins(_JEQ_K, _SOCK_STREAM, 2, 0),
        _ins(_JEQ_K, _SOCK_SEQPACKET, 1, 0),
        eperm,
        _ret(_RET_ALLOW),
    ])  # fmt: skip
    prog += _block(table["ioctl"], [
        _ins(_LD_W_ABS, _arg_lo(1)),
        _ins(_JEQ_K, _TIOCSTI, 1, 0),
        _ins(_JEQ_K, _TIOCLINUX, 0, 1),
        eperm,
        _ret(_RET_ALLOW),
    ])  # fmt: skip
    for name in DENIED_SYSCALLS:
        if name in table:
            prog += [_ins(_JEQ_K, table[name], 0, 1), eperm]
    prog.append(_ret(_RET_ALLOW))
    return b"".join(struct.pack("=HBBI", code, jt, jf, k) for code, jt, jf, k in prog)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(arch: str | None = None) -> int:
    """Install the filter on every thread of this process (TSYNC); irreversible.

    Sets PR_SET_NO_NEW_PRIVS first (required without CAP_SYS_ADMIN). Install it last among
    the start-up layers: after it, mount/unshare/landlock set-up calls that need no denied
    syscall still work, but nothing can loosen it. Returns the number of BPF instructions.
    """
    arch = arch or os.uname().machine
    program = build_filter(arch)
    count = len(program) // 8
    buf = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(count, ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    if libc.prctl(ctypes.c_int(_PR_SET_NO_NEW_PRIVS), ctypes.c_ulong(1), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(err)}")
    res = libc.syscall(
        ctypes.c_long(_ARCHES[arch][1]["seccomp"]),
        ctypes.c_uint(_SECCOMP_SET_MODE_FILTER),
        ctypes.c_uint(_SECCOMP_FILTER_FLAG_TSYNC),
        ctypes.byref(fprog),
    )
    if res != 0 and ctypes.get_errno() == errno.ENOSYS:  # kernels before 3.17: prctl only
        res = libc.prctl(
            ctypes.c_int(_PR_SET_SECCOMP), ctypes.c_ulong(_SECCOMP_MODE_FILTER), ctypes.byref(fprog), 0, 0
        )
    if res != 0:
        err = ctypes.get_errno() if res < 0 else errno.EBUSY  # TSYNC returns a thread id it could not sync
        raise OSError(err, f"seccomp(SET_MODE_FILTER): {os.strerror(err)}")
    return count
