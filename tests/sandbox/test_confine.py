from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeact.sandbox._bwrap import PythonRuntime
from codeact.sandbox.guest.confine import ConfinePolicy
from codeact.sandbox.guest.landlock import LandlockPolicy, abi_version
from codeact.sandbox.guest.rlimits import Limits
from tests._isolation import fail_or_skip, require_sandbox
from tests.sandbox._layer_child import GUEST_DIR

CONFINE = str(GUEST_DIR / "confine.py")
ROOT = os.geteuid() == 0
SYSTEM_PATHS = ("/usr/lib", "/lib", "/lib64")


def _world_reachable(path: str) -> bool:
    parts = Path(path).resolve().parents
    return all(os.stat(p).st_mode & 0o001 for p in parts)


def _python_for_sandbox_uid() -> str | None:
    """As root, the dropped uid must still reach the interpreter's files (pyenv under /root does not)."""
    if not ROOT:
        return sys.executable
    for candidate in (sys.executable, "/usr/bin/python3"):
        if os.path.exists(candidate) and _world_reachable(os.path.realpath(candidate)):
            runtime = PythonRuntime.of(candidate)
            if all(_world_reachable(p) for p in runtime.paths) and _world_reachable(CONFINE):
                return candidate
    return None


PYTHON = _python_for_sandbox_uid()
pytestmark = require_sandbox()


@pytest.fixture(autouse=True)
def _python_for_sandbox() -> None:
    if PYTHON is None:
        fail_or_skip("no Python interpreter the sandbox uid 65534 can read (as root, a pyenv under /root is not)")
PYTHON_PATHS = PythonRuntime.of(PYTHON).paths if PYTHON else ()


def _run(policy: ConfinePolicy, *target: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PYTHON), "-I", CONFINE, policy.to_json(), *target],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _policy(directory: Path, **changes: object) -> ConfinePolicy:
    base = {
        "drop_to": (65534, 65534) if ROOT else None,
        "workdir": str(directory),
        "limits": Limits(address_space=2 << 30),
        "landlock": LandlockPolicy(
            read_only=PYTHON_PATHS + SYSTEM_PATHS + (CONFINE,), read_write=(str(directory),)
        ),
    }
    base.update(changes)
    return ConfinePolicy(**base)  # type: ignore[arg-type]


@pytest.fixture()
def workdir() -> Iterator[Path]:
    # Not under pytest's 0700 basetemp: the dropped uid must be able to enter it.
    path = Path(tempfile.mkdtemp(prefix="codeact-confine-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_policy_round_trips_through_json() -> None:
    policy = ConfinePolicy(
        drop_to=(1000, 1001),
        workdir="/workspace",
        limits=Limits(cpu_seconds=5, processes=64),
        landlock=LandlockPolicy(read_only=("/a",), read_write=("/b", "/c"), deny_tcp=False),
        require_landlock=True,
        seccomp=False,
    )
    assert ConfinePolicy.from_json(policy.to_json()) == policy
    assert ConfinePolicy.from_json(ConfinePolicy(limits=None, landlock=None).to_json()).landlock is None


def test_every_layer_is_applied_before_the_code_runs(workdir: Path) -> None:
    code = """
import ctypes, json, os, socket
libc = ctypes.CDLL(None, use_errno=True)
sig = ctypes.c_int(-1)
libc.prctl(2, ctypes.byref(sig), 0, 0, 0)  # PR_GET_PDEATHSIG
try:
    socket.socket()
    sock = "allowed"
except PermissionError:
    sock = "denied"
try:
    os.setuid(0)
    regain = "regained"
except PermissionError:
    regain = "denied"
try:
    open("/etc/hostname").read()
    etc = "read"
except PermissionError:
    etc = "denied"
print(json.dumps({"uid": os.getresuid(), "groups": os.getgroups(), "cwd": os.getcwd(), "pdeathsig": sig.value,
    "dumpable": libc.prctl(3, 0, 0, 0, 0), "socket": sock, "regain": regain, "etc": etc}))
"""
    done = _run(_policy(workdir), "-c", code)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    if ROOT:
        assert got["uid"] == [65534, 65534, 65534] and got["groups"] == [] and got["regain"] == "denied"
    assert got["cwd"] == str(workdir)
    assert got["pdeathsig"] == 9, "PR_SET_PDEATHSIG must be re-armed after the uid change"
    assert got["dumpable"] == 0
    assert got["socket"] == "denied"
    if abi_version() > 0:
        assert got["etc"] == "denied"


def test_a_script_runs_as_the_real_main_module(workdir: Path) -> None:
    script = workdir / "kernel_like.py"
    script.write_text(
        "import pickle, sys\n"
        "class Box:\n    pass\n"
        "assert sys.modules['__main__'].Box is Box\n"
        "print(len(pickle.dumps(Box())) > 0, sys.argv[1:], __file__.endswith('kernel_like.py'))\n"
    )
    done = _run(_policy(workdir), str(script), "--fd", "3")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True ['--fd', '3'] True"


def test_a_failed_layer_stops_the_kernel_before_it_runs(workdir: Path) -> None:
    policy = _policy(workdir, workdir=str(workdir / "missing"))
    done = _run(policy, "-c", "print('ran')")
    assert done.returncode == 121
    assert "ran" not in done.stdout
    assert "codeact-confine: FileNotFoundError" in done.stderr


def test_confine_refuses_when_a_thread_already_runs(workdir: Path) -> None:
    code = (
        "import importlib.util, sys, threading, time\n"
        f"spec = importlib.util.spec_from_file_location('cf', {CONFINE!r})\n"
        "cf = importlib.util.module_from_spec(spec); sys.modules['cf'] = cf; spec.loader.exec_module(cf)\n"
        "threading.Thread(target=time.sleep, args=(5,), daemon=True).start()\n"
        "try:\n    cf.confine(cf.ConfinePolicy(limits=None, landlock=None, seccomp=False))\n"
        "except RuntimeError as exc:\n    print('refused:', exc)\n"
    )
    done = subprocess.run(
        [str(PYTHON), "-I", "-c", code], check=False, capture_output=True, text=True, timeout=30
    )
    assert "refused: confine() must run before any other thread starts" in done.stdout, done.stderr


def test_the_kernel_dies_with_its_parent(workdir: Path) -> None:
    # middle starts a confined sleeper, prints its pid and exits at once: the sleeper must die.
    policy = _policy(workdir).to_json()
    middle = (
        "import subprocess, sys\n"
        f"p = subprocess.Popen([sys.executable, '-I', {CONFINE!r}, sys.argv[1], '-c', 'import time; time.sleep(30)'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "import time; time.sleep(1.0)\n"  # let the child finish confining
        "print(p.pid, flush=True)\n"
    )
    done = subprocess.run(
        [str(PYTHON), "-I", "-c", middle, policy], check=False, capture_output=True, text=True, timeout=30
    )
    pid = int(done.stdout.strip())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    assert not _alive(pid), "the confined child outlived its parent"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")
