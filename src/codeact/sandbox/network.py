"""Network access for the isolated sandbox: off by default, or an explicit allowlist served by the host.

The sandbox never gets a network interface (its network namespace stays empty) and may not
create sockets. With a `NetworkPolicy`, the kernel asks the host, over a dedicated socketpair,
for a TCP connection to a host and port; the host checks the allowlist, resolves the name
itself, refuses private and loopback addresses unless they were allowed by IP, connects, and
hands the connected socket to the kernel. Inside, `socket.create_connection`, `http.client`,
`urllib.request`, `ssl` and libraries built on them work for allowed destinations
(`codeact.sandbox.guest.netshim`). What is not offered: UDP, DNS queries, listening sockets, raw
sockets, and any destination not on the list. TLS runs end to end in the sandbox, so the host
sees destinations, not contents.
"""

from __future__ import annotations

import errno
import fnmatch
import ipaddress
import json
import math
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from codeact.errors import ConfigError

__all__ = ["Connection", "Egress", "NetworkPolicy"]

_MAX_LOG = 1_000
_MAX_REQUEST = 4096
"""Bytes of one connection request; a longer one is refused (the channel's messages are bounded)."""
_HOST = re.compile(r"[A-Za-z0-9._\-]{1,253}|\[?[0-9A-Fa-f:.]{2,45}\]?")
"""What a host in a request may look like: a DNS name or an IP literal (no scope ids, no NUL)."""
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_NOT_GLOBAL = tuple(
    ipaddress.ip_network(n)
    for n in ("0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "240.0.0.0/4", "fec0::/10")
)
"""Not globally routable whatever this Python's `is_global` says (its tables changed across versions)."""


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
        allow_private: also connect when an allowed *name* resolves to an address that is not
            globally routable: loopback, private, link-local, CGNAT (100.64/10), multicast,
            broadcast, unspecified, reserved, or one of those wrapped in IPv6 (IPv4-mapped,
            NAT64, 6to4, Teredo). Off: such answers are refused, so DNS cannot point an allowed
            name at the host's own services. Entries given as IP addresses are always honoured.
            The host resolves a name once and connects to the address it checked, so a DNS
            answer that changes between check and connect (rebinding) is never used unchecked.
        max_connections: connection requests one session may make; past it each is refused.
    """

    allow: tuple[str, ...]
    connect_timeout: float = 10.0
    allow_private: bool = False
    max_connections: int = 10_000
    _rules: tuple[_Rule, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.allow, str):
            object.__setattr__(self, "allow", (self.allow,))
        object.__setattr__(self, "allow", tuple(self.allow))
        object.__setattr__(self, "_rules", tuple(_parse(e) for e in self.allow))
        if not (isinstance(self.connect_timeout, (int, float)) and 0 < self.connect_timeout <= 600):
            raise ConfigError(f"connect_timeout must be in (0, 600] seconds, got {self.connect_timeout!r}")
        if not (isinstance(self.max_connections, int) and self.max_connections > 0):
            raise ConfigError(f"max_connections must be a positive int, got {self.max_connections!r}")

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
        if not isinstance(host, str) or not _HOST.fullmatch(host):
            return f"{host[:80]!r} is not a host name or IP address" if isinstance(host, str) else "bad host"
        name = host.lower().rstrip(".")
        if not (isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536):
            return f"bad port {port!r}"
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
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if self.allow_private or _public(ip):
            return True
        try:  # an IP entry names it explicitly
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        return True


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Globally routable unicast, and so is any IPv4 address the IPv6 one carries."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return _public(ip.ipv4_mapped)  # the connection goes to that IPv4 address
    if not ip.is_global or ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return False
    if any(ip.version == net.version and ip in net for net in _NOT_GLOBAL):
        return False
    if isinstance(ip, ipaddress.IPv4Address):
        return ip != ipaddress.IPv4Address("255.255.255.255")
    inner: list[ipaddress.IPv4Address] = []
    if ip.sixtofour is not None:
        inner.append(ip.sixtofour)
    if ip.teredo is not None:
        inner.extend(ip.teredo)
    if any(ip in net for net in _NAT64):
        inner.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if int(ip) >> 32 == 0:  # ::a.b.c.d, the deprecated IPv4-compatible form
        inner.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return all(_public(v4) for v4 in inner)


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
        self.requests = 0
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
                data, _, flags, _ = self.channel.recvmsg(_MAX_REQUEST + 1)
            except OSError:
                return
            if not data:
                return
            try:
                request_id, host, port, timeout = _parse_request(data, flags)
            except ValueError as exc:
                self._reply({"id": None, "ok": False, "errno": errno.EINVAL, "error": f"a malformed request: {exc}"})
                continue
            self.requests += 1
            if self.requests > self.policy.max_connections:
                self._reply({
                    "id": request_id, "ok": False, "errno": errno.EACCES,
                    "error": f"this session asked for more than {self.policy.max_connections} connections",
                })  # fmt: skip
                continue
            try:
                self._handle(request_id, host, port, timeout)
            except Exception as exc:  # noqa: BLE001 - one bad request must not stop the channel
                self._reply({"id": request_id, "ok": False, "errno": errno.EIO, "error": type(exc).__name__})

    def _handle(self, request_id: int, host: str, port: int, timeout: float | None) -> None:
        started = time.perf_counter()
        reason = self.policy.check(host, port)
        sock: socket.socket | None = None
        address: str | None = None
        code = errno.EACCES
        if reason is None:
            wait = timeout if timeout is not None else self.policy.connect_timeout
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
        except (OSError, UnicodeError, ValueError) as exc:
            return None, None, f"cannot resolve {host}: {exc}", errno.EHOSTUNREACH
        last, code = f"no usable address for {host}", errno.EHOSTUNREACH
        deadline = time.monotonic() + timeout  # for all addresses together
        for family, kind, proto, _, sockaddr in infos[:16]:
            if family not in (socket.AF_INET, socket.AF_INET6):
                continue
            if not self.policy._address_allowed(host, str(sockaddr[0])):
                last = f"{host} resolves to {sockaddr[0]}, a private address, which the policy does not allow"
                code = errno.EACCES
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                last, code = f"cannot connect to {host}:{port}: timed out", errno.ETIMEDOUT
                break
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(left)
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


def _parse_request(data: bytes, flags: int) -> tuple[int, str, int, float | None]:
    """(id, host, port, timeout) of one request from the sandbox, every field checked."""
    if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC) or len(data) > _MAX_REQUEST:
        raise ValueError(f"longer than {_MAX_REQUEST} bytes")
    try:
        request = json.loads(data)
    except (ValueError, RecursionError):
        raise ValueError("not JSON") from None
    if not isinstance(request, dict) or set(request) - {"id", "host", "port", "timeout"}:
        raise ValueError("not a request object")
    request_id, host, port, timeout = (request.get(k) for k in ("id", "host", "port", "timeout"))
    if not (isinstance(request_id, int) and not isinstance(request_id, bool) and 0 <= request_id < 1 << 53):
        raise ValueError("bad id")
    if not (isinstance(host, str) and _HOST.fullmatch(host)):
        raise ValueError("bad host")
    if not (isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536):
        raise ValueError("bad port")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout):
            raise ValueError("bad timeout")
        timeout = float(timeout) if timeout > 0 else None
    return request_id, host, port, timeout
