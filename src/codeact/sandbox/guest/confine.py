"""Apply every in-process isolation layer, in the one order that works, then run the kernel.

The launcher runs, inside bwrap::

    python -I -B .../sandbox/guest/confine.py '<ConfinePolicy JSON>' .../sandbox/guest/kernel.py --fd 3

and this script confines the process, then runs the kernel script as `__main__` in the same
interpreter, so no code from the bridge ever runs unconfined. Run as a script it imports its
sibling layer modules as the private package `_codeact_guest` and never imports the `codeact`
package (slow, and not needed inside). Order matters:

1. refuse if another thread exists (Landlock binds only the calling thread);
2. drop to the sandbox uid/gid (privileged mode: bwrap left only CAP_SETUID/CAP_SETGID);
3. chdir into the workspace (as root, bwrap could not enter it);
4. PR_SET_PDEATHSIG(SIGKILL): after the drop, since a credential change clears it;
5. PR_SET_DUMPABLE(0): siblings with the same uid cannot ptrace or read /proc/<pid>/mem;
6. rlimits; 7. Landlock; 8. seccomp last (it denies nothing the earlier steps need, but
   installing it last keeps that true as the list grows).

Stdlib only (plus its sibling layer modules): it runs before anything else in the kernel.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field

_HERE = os.path.dirname(os.path.abspath(__file__))

if not __package__:  # run by path (`python -I -B .../guest/confine.py`): siblings as a private package
    sys.modules.setdefault("_codeact_guest", type(sys)("_codeact_guest")).__path__ = [_HERE]  # type: ignore[attr-defined]
    __package__ = "_codeact_guest"

from .landlock import LandlockPolicy, LandlockResult, abi_version, restrict_self  # noqa: E402
from .rlimits import Limits, apply_limits  # noqa: E402
from .seccomp import install as install_seccomp  # noqa: E402

__all__ = ["ConfinePolicy", "Confinement", "confine", "main", "set_parent_death_signal"]

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_EXIT_CONFINE_FAILED = 121


@dataclass(frozen=True)
class ConfinePolicy:
    """The layers to apply; JSON-serialisable so the launcher can pass it on the command line."""

    drop_to: tuple[int, int] | None = None
    workdir: str | None = None
    limits: Limits | None = field(default_factory=Limits)
    landlock: LandlockPolicy | None = field(default_factory=LandlockPolicy)
    require_landlock: bool = False
    """Fail when the kernel has no Landlock; otherwise the mount namespace alone confines files."""
    seccomp: bool = True
    parent_death_signal: bool = True
    non_dumpable: bool = True

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ConfinePolicy:
        raw = json.loads(text)
        limits = raw.get("limits")
        landlock = raw.get("landlock")
        drop = raw.get("drop_to")
        return cls(
            drop_to=(int(drop[0]), int(drop[1])) if drop else None,
            workdir=raw.get("workdir"),
            limits=Limits(**limits) if limits is not None else None,
            landlock=LandlockPolicy(
                read_only=tuple(landlock["read_only"]),
                read_write=tuple(landlock["read_write"]),
                deny_tcp=bool(landlock["deny_tcp"]),
                scope=bool(landlock["scope"]),
            )
            if landlock is not None
            else None,
            require_landlock=bool(raw.get("require_landlock", False)),
            seccomp=bool(raw.get("seccomp", True)),
            parent_death_signal=bool(raw.get("parent_death_signal", True)),
            non_dumpable=bool(raw.get("non_dumpable", True)),
        )


@dataclass(frozen=True)
class Confinement:
    """What `confine` applied, for the kernel to report to the host."""

    uid: int
    gid: int
    limits: dict[str, int]
    landlock: LandlockResult | None
    seccomp_instructions: int
    duration_s: float


def _prctl(option: int, arg: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}): {os.strerror(err)}")


def set_parent_death_signal(expected_parent: int | None = None) -> None:
    """SIGKILL this process when its parent exits; exit now if the parent is already gone.

    Call it again in every forked session: fork and credential changes clear the setting.
    """
    parent = os.getppid() if expected_parent is None else expected_parent
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(_EXIT_CONFINE_FAILED)


def _drop_privileges(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid) or os.getgroups():
        raise PermissionError(f"could not switch to uid {uid} / gid {gid}")
    if uid != 0:
        try:
            os.setuid(0)
        except PermissionError:
            return
        raise PermissionError("privileges were not dropped: setuid(0) still succeeds")


def _only_thread() -> bool:
    if threading.active_count() != 1:
        return False
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:  # no /proc: trust the interpreter's count
        return True


def confine(policy: ConfinePolicy) -> Confinement:
    """Apply `policy` to this process, irreversibly. Raises OSError/RuntimeError if a layer fails."""
    start = time.perf_counter()
    parent = os.getppid()
    if not _only_thread():
        raise RuntimeError("confine() must run before any other thread starts (Landlock is per thread)")
    if policy.drop_to is not None:
        _drop_privileges(*policy.drop_to)
    if policy.workdir is not None:
        os.chdir(policy.workdir)
        os.environ["PWD"] = policy.workdir
    if policy.parent_death_signal:
        set_parent_death_signal(parent)
    if policy.non_dumpable:
        _prctl(_PR_SET_DUMPABLE, 0)
    limits = apply_limits(policy.limits) if policy.limits is not None else {}
    landlock = None
    if policy.landlock is not None:
        abi = abi_version()
        if abi > 0:
            landlock = restrict_self(policy.landlock, abi=abi)
        elif policy.require_landlock:
            raise OSError("Landlock is required by the sandbox policy but this kernel does not offer it")
    instructions = install_seccomp() if policy.seccomp else 0
    return Confinement(
        uid=os.getuid(),
        gid=os.getgid(),
        limits=limits,
        landlock=landlock,
        seccomp_instructions=instructions,
        duration_s=time.perf_counter() - start,
    )


def main(argv: list[str] | None = None) -> None:
    """`confine.py POLICY_JSON (SCRIPT | -m MODULE | -c CODE) [ARGS...]`: confine, then run."""
    if sys.path and sys.path[0] == _HERE:  # run without -I: keep codeact's files off the import path
        del sys.path[0]
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or (args[1] in ("-m", "-c") and len(args) < 3):
        sys.stderr.write("usage: confine.py POLICY_JSON (SCRIPT | -m MODULE | -c CODE) [ARGS...]\n")
        raise SystemExit(2)
    try:
        confine(ConfinePolicy.from_json(args[0]))
    except Exception as exc:  # noqa: BLE001 - any failure must stop the kernel; the host reads this line
        sys.stderr.write(f"codeact-confine: {type(exc).__name__}: {exc}\n")
        raise SystemExit(_EXIT_CONFINE_FAILED) from None
    if args[1] == "-c":  # for tests and debugging
        sys.argv = ["-c", *args[3:]]
        _run_as_main(compile(args[2], "<string>", "exec"), None)
    elif args[1] == "-m":
        import runpy

        sys.argv = [args[2], *args[3:]]
        runpy.run_module(args[2], run_name="__main__", alter_sys=True)
    else:
        sys.argv = [args[1], *args[2:]]
        with open(args[1], "rb") as f:
            _run_as_main(compile(f.read(), args[1], "exec"), args[1])


def _run_as_main(code: object, filename: str | None) -> None:
    """Run `code` as a fresh `__main__` module, like runpy.run_path (which costs ~20 ms of imports).

    The module must be the real `sys.modules["__main__"]`: pickle and dataclasses look classes
    defined there up by module name.
    """
    import types

    module = types.ModuleType("__main__")
    if filename is not None:
        module.__file__ = filename
    module.__builtins__ = __builtins__  # type: ignore[attr-defined]
    sys.modules["__main__"] = module
    exec(code, module.__dict__)  # type: ignore[arg-type]  # noqa: S102 - running the kernel is the point


if __name__ == "__main__":
    main()
