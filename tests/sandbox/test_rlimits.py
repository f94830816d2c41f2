from __future__ import annotations

import errno
import os
import signal

import pytest

from codeact.sandbox.guest.rlimits import Limits, apply_limits
from tests.sandbox._layer_child import run_child

_APPLY = """
import errno, os, resource
rl = load("rlimits")
applied = rl.apply_limits(rl.Limits(**json.loads(sys.argv[1])))
def attempt(fn):
    try:
        fn()
        return 0
    except MemoryError:
        return "MemoryError"
    except OSError as exc:
        return exc.errno
"""


def test_memory_file_size_fds_and_core_are_capped(tmp_path: object) -> None:
    limits = '{"address_space": 1073741824, "file_size": 1048576, "open_files": 64, "core": 0}'
    got = run_child(
        _APPLY
        + """
def many_files():
    keep = [open(os.devnull) for _ in range(100)]
def big_write():
    with open(sys.argv[2], "wb") as f:
        f.write(b"x" * (2 << 20))
report(
    applied=applied,
    big_alloc=attempt(lambda: bytearray(2 << 30)),
    small_alloc=attempt(lambda: bytearray(10 << 20)),
    big_write=attempt(big_write),
    many_files=attempt(many_files),
    core=list(resource.getrlimit(resource.RLIMIT_CORE)),
)
""",
        limits,
        str(tmp_path) + "/big.bin",
    )
    assert got["applied"] == {"address_space": 1 << 30, "file_size": 1 << 20, "open_files": 64, "core": 0}
    assert got["big_alloc"] == "MemoryError"
    assert got["small_alloc"] == 0
    assert got["big_write"] == errno.EFBIG
    assert got["many_files"] == errno.EMFILE
    assert got["core"] == [0, 0]


@pytest.mark.skipif(os.getuid() != 0, reason="only a root process ignores the NPROC request")
def test_nproc_is_not_applied_to_root() -> None:
    got = run_child(_APPLY + "report(applied=applied)", '{"processes": 10, "address_space": null}')
    assert "processes" not in got["applied"]


def test_cpu_limit_kills_a_busy_loop() -> None:
    import subprocess
    import sys

    from tests.sandbox._layer_child import GUEST_DIR

    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('rl', {str(GUEST_DIR / 'rlimits.py')!r})\n"
        "rl = importlib.util.module_from_spec(spec); sys.modules['rl'] = rl; spec.loader.exec_module(rl)\n"
        "rl.apply_limits(rl.Limits(cpu_seconds=1))\n"
        "while True: pass\n"
    )
    done = subprocess.run([sys.executable, "-I", "-c", code], check=False, timeout=20)
    assert done.returncode in (-signal.SIGKILL, -signal.SIGXCPU)


def test_negative_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="address_space"):
        apply_limits(Limits(file_size=None, open_files=None, core=None, address_space=-1))
