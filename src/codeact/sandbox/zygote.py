"""The host side of the zygote: start one per configuration, spawn isolated sessions, keep a warm pool.

A `Zygote` is one bubblewrap sandbox running `guest/zygote.py`: exec'd once with a scrubbed
environment, it imports the kernel and the configured modules, then forks a session per
request (the host itself never forks: its memory holds API keys and clients). Sessions are
`SessionProcess`es: the kernel's pid lives in the zygote's pid namespace, so the host signals
it through a pidfd the zygote sends back, and learns how it ended from the zygote.

Zygotes are shared: `acquire(spec)` returns the running one for a configuration. A zygote
whose sessions get directories of a shared root (`ZygoteSpec.root` None) keeps a few sessions
forked ahead (`pool_size`), so a new sandbox is ready in about a millisecond.
"""

from __future__ import annotations

import atexit
import os
import secrets
import socket
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from typing import Any

from codeact.errors import ConfigError, IsolationUnavailable, SandboxError
from codeact.sandbox._bwrap import CONFINE_SCRIPT, BwrapConfig, PythonRuntime, build_command
from codeact.sandbox._sessiondirs import make_root, remove_tree
from codeact.sandbox.guest.confine import ConfinePolicy
from codeact.sandbox.guest.rlimits import Limits
from codeact.sandbox.guest.zygote import recv_message, send_message
from codeact.sandbox.session import Identity, SessionParams, SessionProcess

__all__ = [
    "PROCESS_HINT",
    "SANDBOX_UID",
    "ZYGOTE_SCRIPT",
    "Zygote",
    "ZygoteSpec",
    "acquire",
    "release",
    "shutdown_all",
]

ZYGOTE_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "guest", "zygote.py")
SANDBOX_UID = 65534
PROCESS_HINT = (
    'To run model code WITHOUT isolation, choose the process sandbox explicitly: sandbox="process" '
    '(resolve_sandbox("process") or ProcessSandbox() in Python), or `--sandbox process` on the command line.'
)
_THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
_UID_RANGE = (1 << 20, (1 << 31) - 2)



@dataclass(frozen=True)
class ZygoteSpec:
    """What a zygote's sandbox contains; sessions of one zygote differ only in `SessionParams`."""

    root: str | None = None
    """Host directory bound at /workspace; None: a private temporary root whose
    subdirectories are the sessions' workspaces (each session sees only its own)."""
    python: str | None = None
    preload: tuple[str, ...] = ()
    ro_paths: tuple[str, ...] = ()
    rw_paths: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    require_landlock: bool = False

    @property
    def shared(self) -> bool:
        return self.root is None


@dataclass
class _Pending:
    future: Future[tuple[int, int]]
    host_end: socket.socket
    stderr: int
    identity: Identity
    params: SessionParams


class Zygote:
    """One running zygote sandbox. Use `acquire`, which shares zygotes between sandboxes.

    Args:
        spec: what the sandbox contains.
        bwrap: the bwrap binary (from `probe()`).
        pool_size: sessions to keep forked ahead for `SessionParams()` (shared roots only).
        start_timeout: seconds for the zygote to import everything and report ready.
    """

    def __init__(self, spec: ZygoteSpec, *, bwrap: str, pool_size: int = 0, start_timeout: float = 60.0) -> None:
        self.spec = spec
        self.root_mode = os.geteuid() == 0
        self.pool_size = pool_size if spec.shared else 0
        self.users = 0
        self._owns_root = spec.root is None
        self.root = spec.root or self._make_root()
        self._lock = threading.Lock()
        self._exits: dict[int, int] = {}
        self._live: set[int] = set()
        self._exit_cond = threading.Condition(self._lock)
        self._pending: dict[int, _Pending] = {}
        self._next_id = 0
        self._pool: deque[_Pending] = deque()
        self._dead: str | None = None
        self._control, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - open for the zygote's life, closed in close()
        try:
            self._process, self.info = self._start(bwrap, child_end, start_timeout)
        except BaseException:
            self._control.close()
            self._log.close()
            if self._owns_root:
                remove_tree(self.root)
            raise
        finally:
            child_end.close()
        self._reader = threading.Thread(target=self._read, name="codeact-zygote", daemon=True)
        self._reader.start()
        self._fill_pool()

    # Start-up ---------------------------------------------------------------------------------
    def _make_root(self) -> str:
        return make_root(0o711 if self.root_mode else 0o700)  # as root, session uids must traverse it

    def _start(
        self, bwrap: str, child_end: socket.socket, timeout: float
    ) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
        spec = self.spec
        runtime = PythonRuntime.of(spec.python) if spec.python else PythonRuntime.current()
        config = BwrapConfig(
            workspace=self.root,
            runtime=runtime,
            ro_paths=spec.ro_paths,
            rw_paths=spec.rw_paths,
            tmp_size=16 << 20,  # the zygote's own /tmp; sessions mount their own
            env={**_THREAD_ENV, **dict(spec.env)},
            nested_userns=True,
        )
        fd = child_end.fileno()
        placeholder = build_command(config, ["true"], bwrap=bwrap)
        inner_spec = {
            "root_mode": self.root_mode,
            "inner_uid": SANDBOX_UID,
            "inner_gid": SANDBOX_UID,
            "read_only": list(placeholder.landlock.read_only),
            "read_write": list(spec.rw_paths),
            "links": [[runtime.real_executable, runtime.executable]]
            if runtime.executable != runtime.real_executable
            else [],
            "preload": list(spec.preload),
            "require_landlock": spec.require_landlock,
        }
        policy = ConfinePolicy(
            drop_to=None,  # root mode: the zygote keeps CAP_SETUID/CAP_SETGID to give each session its uid
            workdir=None,
            limits=Limits(address_space=None, file_size=None, open_files=None, core=0),
            landlock=None,  # each session applies its own, narrower than any the zygote could keep
            seccomp=False,  # the zygote creates namespaces; sessions install the filter
        )
        inner = [runtime.executable, "-I", "-B", CONFINE_SCRIPT, policy.to_json(), ZYGOTE_SCRIPT]
        inner += ["--control", str(fd), _json(inner_spec)]
        command = build_command(config, inner, bwrap=bwrap)
        try:
            process = subprocess.Popen(
                command.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._log,
                pass_fds=(fd,),
                start_new_session=True,
                env={},
            )
        except OSError as exc:
            raise IsolationUnavailable(f"cannot start bubblewrap ({bwrap}): {exc}. {PROCESS_HINT}") from exc
        self._control.settimeout(timeout)
        try:
            message, fds = recv_message(self._control)
        except (OSError, ValueError) as exc:
            message, fds = None, []
            if not isinstance(exc, TimeoutError):
                raise SandboxError(f"the sandbox zygote sent a bad greeting: {exc}") from exc
        finally:
            self._control.settimeout(None)
        for extra in fds:
            os.close(extra)
        if message is None or message.get("op") != "ready":
            process.kill()
            process.wait()
            raise IsolationUnavailable(
                f"the isolated sandbox could not start: {self._log_text() or 'no ready message in time'}. {PROCESS_HINT}"
            )
        errors = message.get("preload_errors") or {}
        if errors:
            process.kill()
            process.wait()
            listed = "; ".join(f"{k}: {v}" for k, v in errors.items())
            raise ConfigError(f"preload modules could not be imported inside the sandbox ({listed})")
        return process, message

    def _log_text(self) -> str:
        try:
            self._log.seek(0)
            return self._log.read(8_000).decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""

    # Sessions ---------------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._dead is None and self._process.poll() is None

    def new_identity(self, *, subdir: bool | None = None) -> Identity:
        """A fresh session identity: its own directory under a shared root, and as root its own uid."""
        name = None
        if self.spec.shared if subdir is None else subdir:
            name = "s-" + secrets.token_hex(6)
        uid = gid = None
        if self.root_mode:
            uid = gid = secrets.randbelow(_UID_RANGE[1] - _UID_RANGE[0]) + _UID_RANGE[0]
        return Identity(name, uid, gid)

    def workspace_of(self, identity: Identity) -> str:
        return os.path.join(self.root, identity.subdir) if identity.subdir else self.root

    def take(self, params: SessionParams) -> SessionProcess:
        """A session for `params`: a pooled one when it matches, else a new one."""
        if params == SessionParams() and not params.network:
            while True:
                with self._lock:
                    pending = self._pool.popleft() if self._pool else None
                if pending is None:
                    break
                self._fill_pool()
                try:
                    return self._finish(pending)
                except SandboxError:
                    continue  # it died while waiting; try the next
        return self.spawn(params, self.new_identity())

    def spawn(
        self, params: SessionParams, identity: Identity, *, network: socket.socket | None = None, timeout: float = 30.0
    ) -> SessionProcess:
        """Fork a new session with `identity` (its directory is created if needed)."""
        return self._finish(self._request(params, identity, network), timeout)

    def _request(self, params: SessionParams, identity: Identity, network: socket.socket | None) -> _Pending:
        if self._dead is not None:
            raise SandboxError(f"the sandbox zygote is gone ({self._dead})")
        if params.network != (network is not None):
            raise ConfigError("a session with network access needs its network channel, and only then")
        self._prepare_dir(identity)
        host_end, kernel_end = socket.socketpair()
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        fds = [kernel_end.fileno(), err_w] + ([network.fileno()] if network is not None else [])
        session = {
            "fds": len(fds),
            "subdir": identity.subdir,
            "uid": identity.uid,
            "gid": identity.gid,
            "limits": asdict(params.limits),
            "tmp_size": params.tmp_size,
            "env": dict(params.env),
        }
        pending = _Pending(Future(), host_end, err_r, identity, params)
        try:
            with self._lock:
                self._next_id += 1
                request_id = self._next_id
                self._pending[request_id] = pending
                send_message(self._control, {"op": "spawn", "id": request_id, "session": session}, tuple(fds))
        except OSError as exc:
            with self._lock:
                self._pending.pop(request_id, None)
            host_end.close()
            os.close(err_r)
            raise SandboxError(f"the sandbox zygote is not answering: {exc}") from exc
        finally:
            kernel_end.close()
            os.close(err_w)
        return pending

    def _finish(self, pending: _Pending, timeout: float = 30.0) -> SessionProcess:
        try:
            pid, pidfd = pending.future.result(timeout)
        except Exception as exc:
            pending.host_end.close()
            os.close(pending.stderr)
            if isinstance(exc, IsolationUnavailable | SandboxError):
                raise
            raise SandboxError(f"the sandbox zygote did not create a session in {timeout:g} s") from exc
        return SessionProcess(
            pending.host_end, pidfd=pidfd, pid=pid, zygote=self, stderr=pending.stderr, identity=pending.identity
        )

    def _prepare_dir(self, identity: Identity) -> None:
        if identity.subdir is None:
            return
        path = os.path.join(self.root, identity.subdir)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            return
        if identity.uid is not None and identity.gid is not None:
            os.chown(path, identity.uid, identity.gid)

    def _fill_pool(self) -> None:
        while True:
            with self._lock:
                if len(self._pool) >= self.pool_size or self._dead is not None:
                    return
            try:
                pending = self._request(SessionParams(), self.new_identity(), None)
            except SandboxError:
                return
            with self._lock:
                self._pool.append(pending)

    def exit_status(self, pid: int, wait: float) -> int | None:
        """The wait status of session `pid` once the zygote reaped it; None if not within `wait` s."""
        with self._exit_cond:
            self._exit_cond.wait_for(lambda: pid in self._exits or self._dead is not None, wait)
            return self._exits.get(pid)

    def forget(self, pid: int) -> None:
        with self._lock:
            self._exits.pop(pid, None)
            self._live.discard(pid)

    # The control channel ----------------------------------------------------------------------
    def _read(self) -> None:
        reason = "it exited"
        try:
            while True:
                message, fds = recv_message(self._control)
                if message is None:
                    break
                self._dispatch(message, fds)
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the zygote counts as gone
            reason = f"its control channel failed: {type(exc).__name__}: {exc}"[:500]
        with self._exit_cond:
            self._dead = reason
            pending, self._pending = list(self._pending.values()), {}
            self._exit_cond.notify_all()
        for p in pending:
            if not p.future.done():
                p.future.set_exception(SandboxError(f"the sandbox zygote is gone ({reason})"))

    def _dispatch(self, message: Mapping[str, Any], fds: list[int]) -> None:
        """Act on one message from the zygote, checked field by field (a bad one is dropped)."""
        op = message.get("op")
        pid, status, request_id = message.get("pid"), message.get("status", 0), message.get("id")
        if op == "exited":
            for fd in fds:
                os.close(fd)
            if _is_int(pid) and _is_int(status):
                with self._exit_cond:
                    if pid in self._live:
                        self._exits[pid] = status
                    self._exit_cond.notify_all()
            return
        with self._lock:
            pending = self._pending.pop(request_id, None) if isinstance(request_id, int) else None
        if pending is None:
            for fd in fds:
                os.close(fd)
            return
        if op == "spawned" and len(fds) == 1 and isinstance(pid, int) and _is_int(pid) and pid > 0:
            with self._lock:
                self._live.add(pid)
            pending.future.set_result((pid, fds[0]))
            return
        for fd in fds:
            os.close(fd)
        error = str(message.get("error") or "unknown error")[:2000]
        if message.get("kind") == "isolation":
            pending.future.set_exception(
                IsolationUnavailable(f"this machine cannot create an isolated session: {error}. {PROCESS_HINT}")
            )
        else:
            pending.future.set_exception(SandboxError(f"the sandbox zygote could not create a session: {error}"))

    def close(self) -> None:
        """Stop the zygote: every session it forked dies with it. Safe to call twice."""
        with self._lock:
            pool, self._pool = list(self._pool), deque()
        try:
            self._control.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if self._process.poll() is None:
            self._process.kill()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self._reader.join(timeout=5)
        self._control.close()
        for p in pool:
            p.host_end.close()
            os.close(p.stderr)
            if p.future.done() and p.future.exception() is None:
                os.close(p.future.result()[1])
        self._log.close()
        if self._owns_root:
            remove_tree(self.root)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -(1 << 62) < value < 1 << 62


def _json(value: object) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))


# -- sharing ----------------------------------------------------------------------------------

_registry: dict[ZygoteSpec, Zygote] = {}
_registry_lock = threading.Lock()
_idle: deque[Zygote] = deque()
_KEEP_IDLE = 1


def acquire(spec: ZygoteSpec, *, bwrap: str, pool_size: int = 2) -> Zygote:
    """The running zygote for `spec` (started if needed); pair with `release`."""
    with _registry_lock:
        zygote = _registry.get(spec)
        if zygote is not None and not zygote.alive:
            _drop(zygote)
            zygote = None
        if zygote is None:
            if not _registry:
                atexit.register(shutdown_all)
            zygote = Zygote(spec, bwrap=bwrap, pool_size=pool_size)
            _registry[spec] = zygote
        if zygote in _idle:
            _idle.remove(zygote)
        zygote.users += 1
        return zygote


def release(zygote: Zygote) -> None:
    """One user fewer; an unused zygote is stopped, except the last idle shared one (kept warm)."""
    with _registry_lock:
        zygote.users = max(zygote.users - 1, 0)
        if zygote.users:
            return
        if not (zygote.spec.shared and zygote.alive):
            _drop(zygote)
            return
        _idle.append(zygote)
        while len(_idle) > _KEEP_IDLE:
            _drop(_idle.popleft())


def _drop(zygote: Zygote) -> None:
    if _registry.get(zygote.spec) is zygote:
        del _registry[zygote.spec]
    if zygote in _idle:
        _idle.remove(zygote)
    zygote.close()


def shutdown_all() -> None:
    """Stop every zygote (at interpreter exit)."""
    with _registry_lock:
        zygotes = list(_registry.values())
        _registry.clear()
        _idle.clear()
    for zygote in zygotes:
        zygote.close()
