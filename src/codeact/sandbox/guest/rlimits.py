"""Resource limits a sandboxed kernel sets on itself: memory, CPU, file size, fds, no core dumps.

Runs inside the sandbox at kernel start-up, so it is stdlib only and imports nothing from
codeact. Soft and hard limits are set equal so model code cannot raise them again.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass

__all__ = ["Limits", "apply_limits"]

_GiB = 1 << 30


@dataclass(frozen=True)
class Limits:
    """Per-process ceilings; None leaves a limit as inherited.

    `cpu_seconds` caps the CPU time of the whole kernel process, not of one action (per-action
    time is the timeout's job). `processes` counts every process of the real uid system-wide
    and does not hold for uid 0, so it is only applied to a non-root process; prefer a pids
    cgroup where one is available.
    """

    address_space: int | None = 4 * _GiB
    cpu_seconds: int | None = None
    file_size: int | None = 1 * _GiB
    open_files: int | None = 1024
    core: int | None = 0
    processes: int | None = None


_RESOURCES = (
    ("address_space", resource.RLIMIT_AS),
    ("cpu_seconds", resource.RLIMIT_CPU),
    ("file_size", resource.RLIMIT_FSIZE),
    ("open_files", resource.RLIMIT_NOFILE),
    ("core", resource.RLIMIT_CORE),
    ("processes", resource.RLIMIT_NPROC),
)


def apply_limits(limits: Limits) -> dict[str, int]:
    """Set each limit (soft = hard) and return what was set, by field name.

    A request above the current hard limit is clamped to it, since only a privileged process
    may raise a hard limit. Raises ValueError for a negative limit, before setting any.
    """
    wanted = [(name, res, getattr(limits, name)) for name, res in _RESOURCES]
    for name, _, value in wanted:
        if value is not None and value < 0:
            raise ValueError(f"rlimit {name} must be >= 0, got {value}")
    applied: dict[str, int] = {}
    for name, res, value in wanted:
        if value is None or (name == "processes" and os.getuid() == 0):
            continue
        _, hard = resource.getrlimit(res)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(res, (value, value))
        applied[name] = value
    return applied
