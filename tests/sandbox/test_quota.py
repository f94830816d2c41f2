"""The workspace disk quota: measuring a tree, and the watcher that calls back when it grows too much."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from codeact.sandbox import _quota


def test_usage_counts_blocks_and_does_not_follow_links(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "data").write_bytes(os.urandom(1 << 20))
    (tmp_path / "link").symlink_to("/usr")
    used = _quota.usage(str(tmp_path))
    assert (1 << 20) <= used < (1 << 20) + 64 * 1024
    assert _quota.usage(str(tmp_path), max_entries=1) > 1 << 60  # a flood of entries counts as over quota


def test_growth_past_the_quota_calls_back(tmp_path: Path) -> None:
    (tmp_path / "existing").write_bytes(os.urandom(4 << 20))  # already there: not counted
    hit = threading.Event()
    grown: list[int] = []
    watch = _quota.watch(str(tmp_path), 2 << 20, lambda n: (grown.append(n), hit.set()))
    try:
        (tmp_path / "small").write_bytes(os.urandom(1 << 20))
        assert not hit.wait(0.5)
        with open(tmp_path / "big", "wb") as f:
            for _ in range(8):
                f.write(os.urandom(1 << 20))
                f.flush()
                os.fsync(f.fileno())
        assert hit.wait(5), "the watcher did not notice the growth"
        assert grown[0] > 2 << 20
    finally:
        _quota.unwatch(watch)


_UNREADABLE = """
import importlib.util, os, sys
spec = importlib.util.spec_from_file_location("q", sys.argv[1])
q = importlib.util.module_from_spec(spec); sys.modules["q"] = q; spec.loader.exec_module(q)
root = sys.argv[2]
os.makedirs(root + "/hide/inner")
with open(root + "/hide/inner/blob", "wb") as f:
    f.write(os.urandom(8 << 20))
os.chmod(root + "/hide/inner", 0o300); os.chmod(root + "/hide", 0o100)
print(q.usage(root))
"""


def test_a_directory_made_unreadable_is_still_measured() -> None:
    # Issue 8.6: as a normal user, `chmod 0300` hid a directory's contents from the walk.
    import shutil
    import subprocess
    import sys
    import tempfile

    tmp_path = Path(tempfile.mkdtemp(prefix="codeact-quota-test-"))
    root = tmp_path / "ws"
    runner: dict[str, object] = {}
    python = sys.executable
    if os.geteuid() == 0:  # as the unprivileged owner of the tree, which is the case that matters
        python = "/usr/bin/python3"
        if not os.path.exists(python):
            python = sys.executable
        tmp_path.chmod(0o777)
        runner = {"user": 65534, "group": 65534, "extra_groups": []}
    try:
        done = subprocess.run(
            [python, "-I", "-c", _UNREADABLE, _quota.__file__, str(root)],
            capture_output=True, text=True, timeout=60, check=False, **runner,  # type: ignore[call-overload]
        )  # fmt: skip
    finally:
        for path in tmp_path.rglob("*"):
            if path.is_dir():
                path.chmod(0o700)
        shutil.rmtree(tmp_path, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.strip()) >= 8 << 20
