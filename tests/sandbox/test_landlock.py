from __future__ import annotations

import errno
import socket
from pathlib import Path

import pytest

from codeact.sandbox.guest.landlock import LandlockPolicy, abi_version, restrict_self
from tests.sandbox._layer_child import run_child

ABI = abi_version()
needs_landlock = pytest.mark.skipif(
    ABI == 0, reason="this kernel has no Landlock (CONFIG_SECURITY_LANDLOCK / lsm=)"
)

# The child restricts itself to the interpreter's paths plus argv[1] (read-only) and argv[2]
# (read-write), then tries each operation and reports the errno it got (0 = allowed).
_TRY = """
import os, socket, subprocess
ll = load("landlock")
ro_dir, rw_dir, outside = sys.argv[1:4]
extra = sys.argv[4:]
def attempt(fn):
    try:
        fn()
        return 0
    except OSError as exc:
        return exc.errno
def write(path):
    with open(path, "w") as f:
        f.write("x")
python_paths = tuple(p for p in sys.path if p) + (sys.base_prefix, sys.prefix, "/usr/lib", "/lib", "/lib64")
result = ll.restrict_self(ll.LandlockPolicy(
    read_only=python_paths + (ro_dir, "/nonexistent/landlock-test"),
    read_write=(rw_dir, "/dev/null"),
    deny_tcp="keep-tcp" not in extra,
))
"""


@pytest.fixture()
def dirs(tmp_path: Path) -> tuple[Path, Path, Path]:
    ro, rw, outside = tmp_path / "ro", tmp_path / "rw", tmp_path / "outside"
    for d in (ro, rw, outside):
        d.mkdir()
    (ro / "allowed.txt").write_text("visible")
    (outside / "secret.txt").write_text("hidden")
    return ro, rw, outside


def test_abi_version_is_reported() -> None:
    assert isinstance(ABI, int) and ABI >= 0


def test_restrict_without_landlock_is_an_oserror_and_changes_nothing() -> None:
    with pytest.raises(OSError) as info:
        restrict_self(LandlockPolicy(), abi=0)
    assert info.value.errno == errno.EOPNOTSUPP


@needs_landlock
def test_only_allowlisted_paths_can_be_read(dirs: tuple[Path, Path, Path]) -> None:
    ro, rw, outside = dirs
    got = run_child(
        _TRY
        + """
report(
    allowed=open(os.path.join(ro_dir, "allowed.txt")).read(),
    secret=attempt(lambda: open(os.path.join(outside, "secret.txt")).read()),
    listing=attempt(lambda: os.listdir(outside)),
    via_child=subprocess.run(
        [sys.executable, "-c", "import sys; open(sys.argv[1]).read()", os.path.join(outside, "secret.txt")],
        capture_output=True,
    ).returncode,
    skipped=list(result.skipped),
    abi=result.abi,
)
""",
        str(ro),
        str(rw),
        str(outside),
    )
    assert got["allowed"] == "visible"
    assert got["secret"] == errno.EACCES
    assert got["listing"] == errno.EACCES
    assert got["via_child"] != 0, "a child process inherits the restriction"
    assert "/nonexistent/landlock-test" in got["skipped"]
    assert got["abi"] == ABI


@needs_landlock
def test_read_only_paths_cannot_be_written_read_write_paths_can(dirs: tuple[Path, Path, Path]) -> None:
    ro, rw, outside = dirs
    got = run_child(
        _TRY
        + """
report(
    new_in_ro=attempt(lambda: write(os.path.join(ro_dir, "new.txt"))),
    append_ro=attempt(lambda: open(os.path.join(ro_dir, "allowed.txt"), "a").close()),
    unlink_ro=attempt(lambda: os.unlink(os.path.join(ro_dir, "allowed.txt"))),
    new_in_rw=attempt(lambda: write(os.path.join(rw_dir, "new.txt"))),
    mkdir_rw=attempt(lambda: os.mkdir(os.path.join(rw_dir, "sub"))),
    dev_null=attempt(lambda: write("/dev/null")),
)
""",
        str(ro),
        str(rw),
        str(outside),
    )
    assert got["new_in_ro"] == errno.EACCES
    assert got["append_ro"] == errno.EACCES
    assert got["unlink_ro"] == errno.EACCES
    assert got["new_in_rw"] == 0 and (rw / "new.txt").read_text() == "x"
    assert got["mkdir_rw"] == 0 and (rw / "sub").is_dir()
    assert got["dev_null"] == 0
    assert (ro / "allowed.txt").exists()


@pytest.mark.skipif(ABI < 4, reason=f"Landlock ABI {ABI} < 4 has no TCP rules")
def test_tcp_connect_to_a_local_listener_is_denied(dirs: tuple[Path, Path, Path]) -> None:
    ro, rw, outside = dirs
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = str(server.getsockname()[1])
        code = (
            _TRY
            + """
s = socket.socket()
report(connect=attempt(lambda: s.connect(("127.0.0.1", int(extra[0])))), tcp_denied=result.tcp_denied)
"""
        )
        denied = run_child(code, str(ro), str(rw), str(outside), port)
        allowed = run_child(code, str(ro), str(rw), str(outside), port, "keep-tcp")
    assert denied == {"connect": errno.EACCES, "tcp_denied": True}
    assert allowed == {"connect": 0, "tcp_denied": False}, "the denial comes from Landlock, not the host"
