"""Network access for the isolated sandbox: off by default, or an explicit allowlist served by the host.

The sandbox never gets a network interface (its network namespace stays empty) and may not
create sockets. With a `NetworkPolicy`, the kernel asks the host, over a dedicated socketpair,
for a TCP connection to a host and port; the host checks the allowlist, resolves the name
itself, refuses private and loopback addresses unless they were allowed by IP, connects, and
hands the connected socket to the kernel. Inside, `socket.create_connection`, `http.client`,
`urllib.request`, `ssl` and libraries built on them work for allowed destinations
(`codeact.sandbox._netshim`). What is not offered: UDP, DNS queries, listening sockets, raw
sockets, and any destination not on the list. TLS runs end to end in the sandbox, so the host
sees destinations, not contents.
"""

from __future__ import annotations

import errno
import fnmatch
import ipaddress
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from codeact.errors import ConfigError

__all__ = ["Connection", "Egress", "NetworkPolicy"]

_MAX_LOG = 1_000


@dataclass(frozen=True)
class _Rule:
    host: str
    """A lower-case host name, a `*.suffix` pattern, or an IP address / network."""
    port: int | None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None


def _parse(entry: str) -> _Rule:
    if not isinstance(entry, str) or not entry.strip():
        raise ConfigError(f"network allowlist entries are 'host', 'host:port' or 'ip[/bits][:port]', got {entry!r}")
    text = entry.strip().lower()
    port: int | None = None
    if text.startswith("["):  # [v6]:port
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = _port(rest[1:], entry)
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = _port(port_text, entry)
    else:
        host = text
    try:
        network = ipaddress.ip_network(host, strict=False)
    except ValueError:
        network = None
        if not all(part and (part == "*" or part.replace("-", "").replace("_", "").isalnum()) for part in host.split(".")):
            raise ConfigError(f"network allowlist entry {entry!r} is not a host name or IP address") from None
        if "*" in host and not host.startswith("*.") or host.count("*") > 1:
            raise ConfigError(f"network allowlist entry {entry!r}: only a leading '*.' wildcard is supported") from None
    return _Rule(host, port, network)


def _port(text: str, entry: str) -> int:
    if text == "*":
        return 0
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigError(f"network allowlist entry {entry!r} has a bad port {text!r}")
    return int(text)


@dataclass(frozen=True)
class NetworkPolicy:
    """Which TCP destinations sandboxed code may connect to; nothing else is reachable.

    Args:
        allow: entries like "api.github.com:443", "*.example.org" (any port), "10.0.0.5:8080",
            "192.168.1.0/24". A name matches itself only; "*.example.org" matches its subdomains.
        connect_timeout: seconds the host waits for a connection when the code gave no timeout.
        allow_private: also connect when an allowed *name* resolves to a loopback, private or
            link-local address (off: such answers are refused, so DNS cannot point an allowed
            name at the host's own services). Entries given as IP addresses are always honoured.
    """

    allow: tuple[str, ...]
    connect_timeout: float = 10.0
    allow_private: bool = False
    _rules: tuple[_Rule, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.allow, str):
            object.__setattr__(self, "allow", (self.allow,))
        object.__setattr__(self, "allow", tuple(self.allow))
        object.__setattr__(self, "_rules", tuple(_parse(e) for e in self.allow))
        if not self.connect_timeout > 0:
            raise ConfigError(f"connect_timeout must be positive, got {self.connect_timeout!r}")

    @classmethod
    def coerce(cls, value: NetworkPolicy | Iterable[str] | str | None) -> NetworkPolicy | None:
        """None / a policy / a list of allowlist entries."""
        if value is None or isinstance(value, NetworkPolicy):
            return value
        if isinstance(value, str):
            return cls((value,))
        return cls(tuple(value))

    def check(self, host: str, port: int) -> str | None:
        """None if (host, port) may be requested; else why not (before any resolution)."""
        name = host.strip().lower().rstrip(".")
        if not 0 < port < 65536:
            return f"bad port {port}"
        try:
            address = ipaddress.ip_address(name.strip("[]"))
        except ValueError:
            address = None
        for rule in self._rules:
            if rule.port not in (None, 0, port):
                continue
            if address is not None:
                if rule.network is not None and address in rule.network:
                    return None
            elif rule.network is None and (
                name == rule.host or (rule.host.startswith("*.") and fnmatch.fnmatchcase(name, rule.host))
            ):
                return None
        return f"{host}:{port} is not on the sandbox's network allowlist"

    def _address_allowed(self, host: str, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if self.allow_private or not (
            ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified
        ):
            return True
        try:  # an IP entry names it explicitly
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        return True


@dataclass(frozen=True)
class Connection:
    """One connection request from the sandbox, as the host decided it."""

    host: str
    port: int
    allowed: bool
    """The policy let it through (the connection may still have failed)."""
    connected: bool
    address: str | None = None
    error: str | None = None
    duration_s: float = 0.0


class Egress:
    """Serves one kernel's connection requests on the host end of its network channel (a thread).

    Args:
        policy: the allowlist.
        channel: the host end of the SOCK_SEQPACKET socketpair whose other end the kernel holds.
        on_connection: called with each `Connection` (from this object's thread).
    """

    def __init__(
        self,
        policy: NetworkPolicy,
        channel: socket.socket,
        *,
        on_connection: Callable[[Connection], None] | None = None,
    ) -> None:
        self.policy = policy
        self.channel = channel
        self.on_connection = on_connection
        self.log: list[Connection] = []
        self._thread = threading.Thread(target=self._serve, name="codeact-egress", daemon=True)
        self._thread.start()

    def close(self) -> None:
        try:
            self.channel.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.channel.close()

    def _serve(self) -> None:
        while True:
            try:
                data = self.channel.recv(1 << 16)
            except OSError:
                return
            if not data:
                return
            try:
                request = json.loads(data)
                host, port = str(request["host"])[:255], int(request["port"])
                timeout = request.get("timeout")
            except (ValueError, KeyError, TypeError):
                self._reply({"id": None, "ok": False, "errno": errno.EINVAL, "error": "a malformed request"})
                continue
            self._handle(request.get("id"), host, port, timeout)

    def _handle(self, request_id: object, host: str, port: int, timeout: object) -> None:
        started = time.perf_counter()
        reason = self.policy.check(host, port)
        sock: socket.socket | None = None
        address: str | None = None
        code = errno.EACCES
        if reason is None:
            wait = float(timeout) if isinstance(timeout, (int, float)) and timeout > 0 else self.policy.connect_timeout
            sock, address, reason, code = self._connect(host, port, min(wait, 120.0))
        allowed = self.policy.check(host, port) is None and code != errno.EACCES
        record = Connection(host, port, allowed, sock is not None, address, reason or None, time.perf_counter() - started)
        if len(self.log) < _MAX_LOG:
            self.log.append(record)
        if self.on_connection is not None:
            self.on_connection(record)
        if sock is None:
            self._reply({"id": request_id, "ok": False, "errno": code, "error": reason})
            return
        try:
            self._reply({"id": request_id, "ok": True, "address": address}, sock.fileno())
        finally:
            sock.close()

    def _connect(
        self, host: str, port: int, timeout: float
    ) -> tuple[socket.socket | None, str | None, str, int]:
        try:
            infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            return None, None, f"cannot resolve {host}: {exc}", errno.EHOSTUNREACH
        last, code = f"no usable address for {host}", errno.EHOSTUNREACH
        for family, kind, proto, _, sockaddr in infos:
            if not self.policy._address_allowed(host, str(sockaddr[0])):
                last = f"{host} resolves to {sockaddr[0]}, a private address, which the policy does not allow"
                code = errno.EACCES
                continue
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(timeout)
                sock.connect(sockaddr)
                sock.settimeout(None)
            except OSError as exc:
                sock.close()
                last = f"cannot connect to {host}:{port}: {exc}"
                code = exc.errno or errno.ECONNREFUSED
                continue
            return sock, str(sockaddr[0]), "", 0
        return None, None, last, code

    def _reply(self, message: dict[str, object], fd: int | None = None) -> None:
        data = json.dumps(message).encode()
        try:
            if fd is None:
                self.channel.sendall(data)
            else:
                socket.send_fds(self.channel, [data], [fd])
        except OSError:
            pass
