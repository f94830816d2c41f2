"""Files out: what a run created, changed or deleted in its workspace.

The workspace is listed (relative path -> size, mtime) when the run starts and when it ends; the
difference goes into `RunResult.files` and, just before RunFinished, a `FilesChanged` event (so
the run log has it). The listing is bounded (entries scanned, depth, changes listed), never
follows links, and treats names as data: the model's code chose them.

`with_files` wraps the pure loop: the scan is the agent's I/O, kept out of `loop.py`.
"""

from __future__ import annotations

import dataclasses
import mimetypes
import os
from pathlib import Path
from typing import Any

from codeact.agent.loop import Loop
from codeact.runs.events import FilesChanged, RunFinished
from codeact.runs.result import FileChange

__all__ = ["MAX_LISTED", "MAX_SCANNED", "Snapshot", "changes", "snapshot", "with_files"]

MAX_SCANNED = 20_000
"""Directory entries read per listing; past it the rest of the tree is not compared."""
MAX_DEPTH = 32
MAX_LISTED = 200
"""Changes listed in the result and the event; `FilesChanged.more` counts the rest."""

Snapshot = dict[str, tuple[int, int, bool]]
"""Relative path -> (size, mtime in ns, is a link)."""


def snapshot(root: Path) -> Snapshot:
    """Every file under `root` (bounded; links listed, never followed)."""
    found: Snapshot = {}
    budget = [MAX_SCANNED]
    _scan(root, "", 0, found, budget)
    return found


def _scan(directory: Path, prefix: str, depth: int, found: Snapshot, budget: list[int]) -> None:
    if depth > MAX_DEPTH:
        return
    try:
        with os.scandir(directory) as it:
            entries = []
            for entry in it:
                budget[0] -= 1
                if budget[0] < 0:
                    break
                entries.append(entry)
    except OSError:
        return
    for entry in entries:
        name = prefix + entry.name
        try:
            if entry.is_dir(follow_symlinks=False):
                _scan(Path(entry.path), name + "/", depth + 1, found, budget)
                continue
            info = entry.stat(follow_symlinks=False)
            found[name] = (info.st_size, info.st_mtime_ns, entry.is_symlink())
        except OSError:
            continue


def changes(before: Snapshot, after: Snapshot) -> list[FileChange]:
    """What differs, sorted by path: created, changed (size or mtime) or deleted."""
    out: list[FileChange] = []
    for path in sorted(after.keys() | before.keys()):
        now, then = after.get(path), before.get(path)
        if now == then:
            continue
        if now is None:
            out.append(FileChange(_shown(path), "deleted", 0, _type(path)))
        else:
            out.append(FileChange(_shown(path), "created" if then is None else "changed", now[0], _type(path)))
    return out


def with_files(loop: Loop, root: Path | None) -> Loop:
    """`loop`, with the workspace's changes added to its end (a FilesChanged event, and `files`
    in the RunResult); `loop` itself when there is no workspace to watch."""
    if root is None:
        return loop
    return _watched(loop, root, snapshot(root))


def _watched(loop: Loop, root: Path, before: Snapshot) -> Loop:
    value: Any = None
    throw: BaseException | None = None
    result: Any = None
    while True:
        try:
            item = loop.throw(throw) if throw is not None else loop.send(value)
        except StopIteration as stop:
            return result if result is not None else stop.value
        value, throw = None, None
        if isinstance(item, RunFinished) and item.result is not None:
            found = changes(before, snapshot(root))
            listed = tuple(found[:MAX_LISTED])
            if listed:
                yield FilesChanged(listed, len(found) - len(listed))
            result = dataclasses.replace(item.result, files=listed)
            item = dataclasses.replace(item, result=result)
        try:
            value = yield item
        except GeneratorExit:
            loop.close()
            raise
        except BaseException as exc:  # noqa: BLE001 - the driver's signals: the loop decides
            throw = exc


def _type(path: str) -> str:
    guessed, _ = mimetypes.guess_type(path, strict=False)
    return guessed or "application/octet-stream"


def _shown(path: str) -> str:
    """The path as text that survives JSON and SQLite (lone surrogates from odd bytes escaped)."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return path.encode("utf-8", "backslashreplace").decode("utf-8")

