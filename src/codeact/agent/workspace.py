"""What the model is told about its working directory: where it is and the files already in it.

Without this a model asked to "summarise report.csv" guesses paths. The listing goes into the
task message (not the system prompt, which stays byte-identical across runs for the model's
prefix cache), is taken once when the run starts, and is bounded: at most `MAX_ENTRIES` names,
read from at most `MAX_SCANNED` directory entries, each name shown as data (control characters
and lone surrogates escaped), since a reused sandbox's earlier code may have named files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["MAX_ENTRIES", "describe_workspace", "workspace_note"]

MAX_ENTRIES = 20
MAX_SCANNED = 1_000


def describe_workspace(sandbox: Any) -> str:
    """The note for `sandbox`'s working directory, or "" when it has none to show."""
    try:
        host = Path(sandbox.workspace)
    except Exception:  # noqa: BLE001 - a sandbox without a host-side workspace: nothing to say
        return ""
    inside = "/workspace" if getattr(sandbox, "kind", "") == "local" else str(host)
    return workspace_note(inside, host)


def workspace_note(inside: str, host: Path) -> str:
    """`inside` as the code sees it, and the files at the top of `host` (names and sizes); "" if none."""
    entries: list[tuple[str, str]] = []
    scanned = 0
    try:
        with os.scandir(host) as it:
            for entry in it:
                scanned += 1
                if scanned > MAX_SCANNED:
                    break
                entries.append((entry.name, _size(entry)))
    except OSError:
        entries = []
    if not entries:
        # An empty workspace is not worth a sentence: measured with the embedded 0.5B model, a bare
        # "Your working directory is /workspace." made it import its tools as modules
        # (`from get_temperature import get_temperature`) and fail a task it solved without it.
        return ""
    note = f"Your working directory is {inside}."
    entries.sort()
    shown = [f"- {_name(name)} ({size})" for name, size in entries[:MAX_ENTRIES]]
    more = len(entries) - MAX_ENTRIES
    if more > 0 or scanned > MAX_SCANNED:
        shown.append(f"- ... and {'more than ' if scanned > MAX_SCANNED else ''}{max(more, 0):,} more")
    return note + " It holds these files:\n" + "\n".join(shown)


def _size(entry: os.DirEntry[str]) -> str:
    try:
        if entry.is_dir(follow_symlinks=False):
            return "directory"
        if entry.is_symlink():
            return "link"
        size = entry.stat(follow_symlinks=False).st_size
    except OSError:
        return "unreadable"
    if size < 1024:
        return f"{size:,} bytes"
    scaled = float(size)
    for unit in ("KB", "MB", "GB"):
        scaled /= 1024
        if scaled < 1024 or unit == "GB":
            break
    return f"{scaled:,.1f} {unit}"


def _name(name: str) -> str:
    """The name as plain text: as it is when printable, else its Python repr (escapes visible)."""
    if name.isprintable() and len(name) <= 200:
        try:
            name.encode("utf-8")
            return name
        except UnicodeEncodeError:
            pass
    return ascii(name[:200])
