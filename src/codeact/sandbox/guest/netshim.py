"""Outbound TCP for sandboxed code under a network allowlist: the host connects, the kernel gets the socket.

Installed inside a session only when the sandbox has a `NetworkPolicy`. The session has no
network interface and may not create sockets (seccomp), so this patches the `socket` module:

- `socket.getaddrinfo` answers numeric addresses itself and returns any host *name* unresolved
  (resolution happens on the host, against the allowlist);
- `socket.socket(AF_INET/AF_INET6, SOCK_STREAM)` gets a placeholder fd, and its `connect()`
  asks the host, over a dedicated socketpair, to open the connection; the host checks the
  policy, connects, and passes the connected socket back (SCM_RIGHTS), which replaces the
  placeholder (`dup2`). The class itself is patched, so `ssl.SSLSocket` and `isinstance` work.

So `http.client`, `urllib.request`, `socket.create_connection`, `ssl`, and libraries built on
them (requests/urllib3) work for allowed destinations; asyncio connects, but synchronously; UDP, raw sockets, listening
sockets and DNS queries do not exist here. A connected socket cannot be pointed elsewhere:
Landlock and seccomp deny `connect()` itself. Stdlib only.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import socket
import threading
from typing import Any

__all__ = ["connect_fd", "install"]

_lock = threading.Lock()
_control: socket.socket | None = None
_ids = itertools.count(1)
_SERVICES = {"http": 80, "https": 443}
_original_getaddrinfo = socket.getaddrinfo


def connect_fd(host: str, port: int, timeout: float | None = None) -> int:
    """Ask the host for a TCP connection to (host, port); return the connected socket's fd."""
    if _control is None:
        raise PermissionError(errno.EACCES, "the network is off in this sandbox")
    request_id = next(_ids)
    try:  # the host accepts ASCII names only: international ones travel in their IDNA form
        host = str(host).encode("idna").decode("ascii")
    except UnicodeError:
        host = str(host)
    request = {"id": request_id, "host": host, "port": int(port), "timeout": timeout}
    with _lock:
        _control.sendall(json.dumps(request).encode())
        while True:
            data, fds, _, _ = socket.recv_fds(_control, 1 << 16, 1)
            if not data:
                raise ConnectionError(errno.ECONNABORTED, "the host closed the network channel")
            reply = json.loads(data)
            if reply.get("id") == request_id:
                break
            for fd in fds:  # a late answer to a request that was interrupted
                os.close(fd)
    if not reply.get("ok"):
        for fd in fds:
            os.close(fd)
        code = reply.get("errno") if isinstance(reply.get("errno"), int) else errno.EACCES
        raise OSError(code, str(reply.get("error") or "connection refused by the host"))
    if len(fds) != 1:
        raise OSError(errno.EPROTO, "the host sent no connected socket")
    return fds[0]


def _port(port: Any) -> int:
    if isinstance(port, int):
        return port
    if isinstance(port, bytes):
        port = port.decode()
    if isinstance(port, str):
        if port.isdigit():
            return int(port)
        if port in _SERVICES:
            return _SERVICES[port]
    raise socket.gaierror(socket.EAI_SERVICE, f"unknown service {port!r}")


def _getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0) -> list:
    try:
        return _original_getaddrinfo(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError):
        pass
    if host is None or type not in (0, socket.SOCK_STREAM) or family not in (0, socket.AF_INET, socket.AF_UNSPEC):
        raise socket.gaierror(socket.EAI_NONAME, "name resolution is not available in this sandbox")
    name = host.decode() if isinstance(host, bytes) else str(host)
    return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (name, _port(port)))]


_Socket = socket.socket
_orig_init = _Socket.__init__
_orig_connect = _Socket.connect
_orig_setsockopt = _Socket.setsockopt
_orig_bind = _Socket.bind
_orig_real_close = _Socket._real_close  # type: ignore[attr-defined]
# Placeholder fds waiting for their connection: fd -> (inode, deferred setsockopt calls). Keyed by
# fd so that a socket re-wrapped around the same fd (ssl does that) is still recognised.
_pending: dict[int, tuple[int, list[tuple[Any, ...]]]] = {}


def _pending_options(sock: socket.socket) -> list[tuple[Any, ...]] | None:
    fd = sock.fileno()
    entry = _pending.get(fd)
    if entry is None:
        return None
    try:
        if os.fstat(fd).st_ino == entry[0]:
            return entry[1]
    except OSError:
        pass
    _pending.pop(fd, None)  # the number was reused by another socket
    return None


def _init(self: socket.socket, family: int = -1, type: int = -1, proto: int = -1, fileno: int | None = None) -> None:
    kind = socket.SOCK_STREAM if type == -1 else type
    if fileno is not None or family not in (-1, socket.AF_INET, socket.AF_INET6) or kind & 0xF != socket.SOCK_STREAM:
        _orig_init(self, family, type, proto, fileno)
        return
    import _socket

    placeholder, other = _socket.socketpair()
    other.close()
    fd = placeholder.detach()
    _orig_init(self, socket.AF_INET if family == -1 else family, kind, 0 if proto == -1 else proto, fd)
    _pending[fd] = (os.fstat(fd).st_ino, [])


def _setsockopt(self: socket.socket, *args: Any) -> None:
    options = _pending_options(self)
    if options is not None:
        options.append(args)  # TCP options wait for the real socket
        return
    _orig_setsockopt(self, *args)


def _connect(self: socket.socket, address: Any) -> None:
    options = _pending_options(self)
    if options is None:
        _orig_connect(self, address)
        return
    if not (isinstance(address, tuple) and len(address) >= 2):
        raise OSError(errno.EINVAL, f"bad address {address!r}")
    fd = connect_fd(address[0], _port(address[1]), self.gettimeout())
    try:
        os.dup2(fd, self.fileno())
    finally:
        os.close(fd)
    _pending.pop(self.fileno(), None)
    self.settimeout(self.gettimeout())  # re-apply the blocking mode to the new open file
    for option in options:
        try:
            _orig_setsockopt(self, *option)
        except OSError:
            pass


def _connect_ex(self: socket.socket, address: Any) -> int:
    try:
        _connect(self, address)
    except OSError as exc:
        return exc.errno or errno.ECONNREFUSED
    return 0


def _bind(self: socket.socket, address: Any) -> None:
    if _pending_options(self) is not None:
        raise PermissionError(errno.EPERM, "listening sockets are not available in this sandbox")
    _orig_bind(self, address)


def _real_close(self: socket.socket, *args: Any) -> None:
    _pending.pop(self.fileno(), None)
    _orig_real_close(self, *args)


def install(fd: int) -> None:
    """Patch the `socket` module to route TCP connects through the host on channel `fd`."""
    global _control
    _control = _Socket(fileno=fd)
    _control.setblocking(True)
    socket.getaddrinfo = _getaddrinfo  # type: ignore[assignment]
    _Socket.__init__ = _init  # type: ignore[method-assign, assignment]
    _Socket.setsockopt = _setsockopt  # type: ignore[method-assign, assignment]
    _Socket.connect = _connect  # type: ignore[method-assign, assignment]
    _Socket.connect_ex = _connect_ex  # type: ignore[method-assign, assignment]
    _Socket.bind = _bind  # type: ignore[method-assign, assignment]
    _Socket._real_close = _real_close  # type: ignore[attr-defined]
