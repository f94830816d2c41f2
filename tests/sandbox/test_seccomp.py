from __future__ import annotations

import errno
import platform
import re
import socket
from pathlib import Path

import pytest

from codeact.sandbox.guest import seccomp
from codeact.sandbox.guest.seccomp import DENIED_SYSCALLS, SUPPORTED_ARCHES, build_filter
from tests.sandbox._layer_child import run_child

ARCH = platform.machine()
needs_seccomp = pytest.mark.skipif(
    ARCH not in SUPPORTED_ARCHES or not Path("/proc/sys/kernel/seccomp").exists(),
    reason=f"no seccomp filter support for {ARCH} here",
)

_INSTALL = """
import ctypes, errno, os, socket
sc = load("seccomp")
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def err(res):
    return ctypes.get_errno() if res == -1 else 0
def attempt(fn):
    try:
        fn()
        return 0
    except OSError as exc:
        return exc.errno
sc.install()
"""


@pytest.mark.parametrize("arch", SUPPORTED_ARCHES)
def test_filter_is_a_small_valid_program_for_each_arch(arch: str) -> None:
    program = build_filter(arch)
    assert len(program) % 8 == 0
    assert 20 < len(program) // 8 < 4096  # the kernel's BPF_MAXINSNS


def test_unknown_arch_is_refused() -> None:
    with pytest.raises(OSError, match="unsupported architecture"):
        build_filter("mips")


@pytest.mark.skipif(
    not Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h").exists(), reason="no kernel headers"
)
def test_x86_64_table_matches_the_kernel_headers() -> None:
    text = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h").read_text()
    numbers = {m[1]: int(m[2]) for m in re.finditer(r"#define __NR_(\w+)\s+(\d+)", text)}
    for name, nr in seccomp._X86_64.items():
        if name in numbers:  # headers older than the table lack the newest calls
            assert numbers[name] == nr, name


@pytest.mark.skipif(not Path("/usr/include/asm-generic/unistd.h").exists(), reason="no kernel headers")
def test_aarch64_table_matches_the_generic_headers() -> None:
    text = Path("/usr/include/asm-generic/unistd.h").read_text()
    numbers = {m[1]: int(m[2]) for m in re.finditer(r"#define __NR(?:3264)?_(\w+)\s+(\d+)", text)}
    for name, nr in seccomp._AARCH64.items():
        if name in numbers:
            assert numbers[name] == nr, name


def test_every_denied_syscall_has_a_number_where_it_exists() -> None:
    missing_everywhere = [
        n for n in DENIED_SYSCALLS if not any(n in t for t in (seccomp._X86_64, seccomp._AARCH64))
    ]
    assert missing_everywhere == []


@needs_seccomp
def test_socket_is_denied_for_every_family_and_socketpair_still_works() -> None:
    got = run_child(
        _INSTALL
        + """
families = {"inet": socket.AF_INET, "inet6": socket.AF_INET6, "unix": socket.AF_UNIX, "netlink": socket.AF_NETLINK}
denied = {}
for name, family in families.items():
    try:
        socket.socket(family, socket.SOCK_DGRAM if name == "netlink" else socket.SOCK_STREAM)
        denied[name] = "allowed"
    except PermissionError as exc:
        denied[name] = exc.errno
a, b = socket.socketpair()
a.sendall(b"ping")
report(denied=denied, pair=b.recv(4).decode(),
       dgram_pair=attempt(lambda: socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)))
"""
    )
    assert got["denied"] == {
        "inet": errno.EPERM,
        "inet6": errno.EPERM,
        "unix": errno.EPERM,
        "netlink": errno.EPERM,
    }
    assert got["pair"] == "ping"
    assert got["dgram_pair"] == errno.EPERM


@needs_seccomp
def test_an_inherited_socketpair_keeps_working() -> None:
    host, kernel = socket.socketpair()
    with host, kernel:
        host.sendall(b"hello")
        got = run_child(
            _INSTALL
            + """
s = socket.socket(fileno=int(sys.argv[1]))
data = s.recv(5)
s.sendall(data.upper())
report(got=data.decode())
""",
            str(kernel.fileno()),
            pass_fds=(kernel.fileno(),),
        )
        assert got == {"got": "hello"}
        assert host.recv(5) == b"HELLO"


@needs_seccomp
def test_escape_and_kernel_attack_surface_syscalls_fail_with_eperm() -> None:
    # Arguments are invalid on purpose: without the filter each call would fail differently
    # (ENOENT, EBADF, EINVAL, EFAULT), so EPERM proves the filter answered.
    got = run_child(
        _INSTALL
        + """
nr = sc._ARCHES[os.uname().machine][1]
CLONE_NEWUSER, SIGCHLD = 0x10000000, 17
results = {
    "ptrace": err(libc.ptrace(0, 0, 0, 0)),
    "mount": err(libc.mount(b"none", b"/nonexistent/mnt", b"tmpfs", 0, None)),
    "umount2": err(libc.umount2(b"/nonexistent/mnt", 0)),
    "unshare": err(libc.unshare(CLONE_NEWUSER)),
    "setns": err(libc.setns(-1, 0)),
    "bpf": err(libc.syscall(nr["bpf"], -1, None, 0)),
    "keyctl": err(libc.syscall(nr["keyctl"], -1, 0, 0, 0, 0)),
    "io_uring_setup": err(libc.syscall(nr["io_uring_setup"], 0, None)),
    "perf_event_open": err(libc.syscall(nr["perf_event_open"], None, 0, -1, -1, 0)),
    "userfaultfd": err(libc.syscall(nr["userfaultfd"], -1)),
    "process_vm_readv": err(libc.syscall(nr["process_vm_readv"], 0, None, 0, None, 0, 0)),
}
child = libc.syscall(nr["clone"], CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0)
if child == 0:
    os._exit(0)
results["clone_newuser"] = err(child)
results["clone3"] = err(libc.syscall(nr["clone3"], None, 0))
report(**results)
"""
    )
    assert got.pop("clone3") == errno.ENOSYS, "clone3 must fall back to the checkable clone"
    assert got == {name: errno.EPERM for name in got}


@needs_seccomp
def test_ordinary_python_still_works() -> None:
    got = run_child(
        _INSTALL
        + """
import asyncio, json, subprocess, tempfile, threading
box = []
t = threading.Thread(target=lambda: box.append("thread"))
t.start(); t.join()
pid = os.fork()
if pid == 0:
    os._exit(3)
status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
proc = subprocess.run([sys.executable, "-c", "print(6 * 7)"], capture_output=True, text=True)
with tempfile.TemporaryFile() as f:
    f.write(b"data"); f.seek(0); data = f.read().decode()
loop_result = asyncio.run(asyncio.sleep(0, result="async"))
report(thread=box, fork=status, subprocess=proc.stdout.strip(), file=data, asyncio=loop_result)
"""
    )
    assert got == {"thread": ["thread"], "fork": 3, "subprocess": "42", "file": "data", "asyncio": "async"}
