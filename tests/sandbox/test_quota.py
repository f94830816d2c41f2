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
