"""Files in a run's workspace: uploads in, results out, every path confined to the workspace.

A path from a client is a relative POSIX path of plain names: no `..`, no absolute path, no
backslash, no NUL, no hidden control characters. It is resolved without following symbolic
links out of the workspace (the run's code may have planted a link to `/etc/passwd`): every
component must be a plain directory or, at the end, a plain file. Sizes are bounded both ways.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from codeact.errors import ConfigError

__all__ = ["FileEntry", "confined", "list_files", "read_file", "write_file"]

_MAX_PATH = 512
_MAX_DEPTH = 16


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int


def confined(root: Path, relative: str) -> Path:
    """`root / relative` for a safe relative path; ConfigError for anything else."""
    if not relative or len(relative) > _MAX_PATH:
        raise ConfigError("a file path must have 1 to 512 characters")
    if relative.startswith("/") or "\\" in relative or any(ord(c) < 32 or ord(c) == 127 for c in relative):
        raise ConfigError("a file path must be relative, with plain characters")
    parts = relative.split("/")
    if len(parts) > _MAX_DEPTH or any(p in ("", ".", "..") for p in parts):
        raise ConfigError("a file path must be plain names joined by '/', without '.' or '..'")
    return root.joinpath(*parts)


def _no_links(root: Path, path: Path, *, last_may_be_missing: bool) -> None:
    """Every component between `root` and `path` is a real directory (the last a real file)."""
    current = root
    parts = path.relative_to(root).parts
    for index, part in enumerate(parts):
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            if last_may_be_missing:
                return
            raise ConfigError("no such file in the workspace") from None
        last = index == len(parts) - 1
        if stat.S_ISLNK(mode) or (not last and not stat.S_ISDIR(mode)):
            raise ConfigError("that path leads through a link or a file; it is not served")
        if last and not stat.S_ISREG(mode):
            raise ConfigError("that path is not a regular file")


def write_file(root: Path, relative: str, data: bytes, *, max_bytes: int) -> FileEntry:
    """Write `data` to the workspace (directories made as needed); refuses to replace a link."""
    if len(data) > max_bytes:
        raise ConfigError(f"the file is larger than {max_bytes:,} bytes")
    path = confined(root, relative)
    _no_links(root, path, last_may_be_missing=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return FileEntry(relative, len(data))


def read_file(root: Path, relative: str, *, max_bytes: int) -> bytes:
    """The file's bytes, if it is a regular file inside the workspace and not too large."""
    path = confined(root, relative)
    _no_links(root, path, last_may_be_missing=False)
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as src:
        if os.fstat(src.fileno()).st_size > max_bytes:
            raise ConfigError(f"the file is larger than {max_bytes:,} bytes; it is not served")
        return src.read(max_bytes + 1)[:max_bytes]


def list_files(root: Path, *, limit: int) -> list[FileEntry]:
    """Regular files under the workspace (links not followed), at most `limit`, sorted."""
    found: list[FileEntry] = []
    if not root.is_dir():
        return found
    for top, dirs, files in os.walk(root, followlinks=False):
        depth = len(Path(top).relative_to(root).parts)
        if depth >= _MAX_DEPTH:
            dirs.clear()
        for name in files:
            full = Path(top) / name
            try:
                info = os.lstat(full)
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                found.append(FileEntry(full.relative_to(root).as_posix(), info.st_size))
            if len(found) >= limit:
                return sorted(found, key=lambda e: e.path)
    return sorted(found, key=lambda e: e.path)
