"""The network allowlist: parsing, decisions, and the host side that makes the connections."""

from __future__ import annotations

import errno
import json
import os
import socket
import threading
from collections.abc import Iterator

import pytest

from codeact.errors import ConfigError
from codeact.sandbox.network import Egress, NetworkPolicy


def test_entries_and_decisions() -> None:
    policy = NetworkPolicy(("api.github.com:443", "*.example.org", "10.0.0.0/8:8080", "[::1]:9000", "192.0.2.7"))
    assert policy.check("api.github.com", 443) is None
    assert policy.check("API.GitHub.com.", 443) is None
    assert "not on the sandbox's network allowlist" in (policy.check("api.github.com", 80) or "")
    assert policy.check("docs.example.org", 1) is None and policy.check("example.org", 443) is not None
    assert policy.check("10.1.2.3", 8080) is None and policy.check("10.1.2.3", 8081) is not None
    assert policy.check("::1", 9000) is None and policy.check("192.0.2.7", 22) is None
    assert policy.check("evil.com", 443) is not None and policy.check("api.github.com", 0) is not None


@pytest.mark.parametrize("entry", ["", "bad host!", "a.*.org", "host:99999", "host:http", "**.x"])
def test_bad_entries_are_config_errors(entry: str) -> None:
    with pytest.raises(ConfigError):
        NetworkPolicy((entry,))


def test_coerce() -> None:
    assert NetworkPolicy.coerce(None) is None
    assert NetworkPolicy.coerce("a.org") == NetworkPolicy(("a.org",))
    policy = NetworkPolicy(("a.org",))
    assert NetworkPolicy.coerce(policy) is policy
    with pytest.raises(ConfigError):
        NetworkPolicy(("a.org",), connect_timeout=0)


@pytest.fixture
def server() -> Iterator[int]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.sendall(b"hello")
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()


def _ask(channel: socket.socket, **request: object) -> tuple[dict, list[int]]:
    channel.sendall(json.dumps({"id": 1, **request}).encode())
    data, fds, _, _ = socket.recv_fds(channel, 65536, 1)
    return json.loads(data), fds


def _egress(policy: NetworkPolicy) -> tuple[Egress, socket.socket]:
    host_end, kernel_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    return Egress(policy, host_end), kernel_end


def test_an_allowed_connection_arrives_as_a_connected_socket(server: int) -> None:
    egress, kernel_end = _egress(NetworkPolicy((f"127.0.0.1:{server}",)))
    reply, fds = _ask(kernel_end, host="127.0.0.1", port=server, timeout=5)
    assert reply["ok"] is True and len(fds) == 1
    with socket.socket(fileno=fds[0]) as connected:
        assert connected.recv(5) == b"hello"
    assert [(c.host, c.allowed, c.connected) for c in egress.log] == [("127.0.0.1", True, True)]
    egress.close()


def test_denials_come_back_as_errors_without_a_socket(server: int) -> None:
    egress, kernel_end = _egress(NetworkPolicy((f"localhost:{server}", "127.0.0.1:1")))
    not_listed, fds = _ask(kernel_end, host="127.0.0.1", port=server)
    assert not_listed["ok"] is False and not_listed["errno"] == errno.EACCES and fds == []
    private, fds = _ask(kernel_end, host="localhost", port=server)  # a name that resolves to loopback
    assert private["ok"] is False and "private address" in private["error"] and fds == []
    refused, fds = _ask(kernel_end, host="127.0.0.1", port=1)
    assert refused["ok"] is False and refused["errno"] == errno.ECONNREFUSED and fds == []
    kernel_end.sendall(b"not json")
    data, fds, _, _ = socket.recv_fds(kernel_end, 65536, 1)
    assert json.loads(data)["errno"] == errno.EINVAL and fds == []
    assert [c.allowed for c in egress.log] == [False, False, True]
    egress.close()


def test_a_name_may_reach_private_addresses_when_allowed(server: int) -> None:
    egress, kernel_end = _egress(NetworkPolicy((f"localhost:{server}",), allow_private=True))
    reply, fds = _ask(kernel_end, host="localhost", port=server)
    assert reply["ok"] is True
    for fd in fds:
        os.close(fd)
    egress.close()


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "100.127.255.254",
        "0.0.0.0", "255.255.255.255", "224.0.0.1", "239.255.255.250", "240.0.0.1", "192.0.0.8", "198.18.0.1",
        "::", "::1", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
        "::127.0.0.1", "64:ff9b::7f00:1", "64:ff9b::a00:1", "64:ff9b:1::a00:1", "2002:7f00:1::1", "2002:a00:1::1",
        "2001:0:4136:e378:8000:63bf:80ff:fffe",
    ],
)  # fmt: skip
def test_an_allowed_name_never_reaches_a_non_public_address(address: str) -> None:
    # Issue 8: every address class, including IPv4 wrapped in IPv6 (mapped, NAT64, 6to4, Teredo)
    # and CGNAT, which `is_private` alone let through.
    assert not NetworkPolicy(("example.org",))._address_allowed("example.org", address)
    assert NetworkPolicy((f"{address}",))._address_allowed(address, address)  # named by IP: honoured


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "::ffff:93.184.216.34"])
def test_public_addresses_pass(address: str) -> None:
    assert NetworkPolicy(("example.org",))._address_allowed("example.org", address)


@pytest.mark.parametrize("spelling", ["2130706433", "0177.0.0.1", "0x7f.0.0.1", "127.1", "0x7f000001"])
def test_numeric_spellings_of_loopback_are_names_and_refused(server: int, spelling: str) -> None:
    # Listed as names (they are not IP addresses to `ipaddress`), they still resolve to loopback.
    egress, kernel_end = _egress(NetworkPolicy((f"{spelling}:{server}",)))
    reply, fds = _ask(kernel_end, host=spelling, port=server)
    assert reply["ok"] is False and fds == [], reply
    egress.close()


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 50_000 + b"]" * 50_000,  # deep nesting: RecursionError in json, formerly a dead thread
        json.dumps({"id": 1, "host": "a" * 70_000, "port": 80}).encode(),  # past the message bound
        json.dumps({"id": 1, "host": "x" * 300, "port": 80}).encode(),  # longer than a DNS name
        json.dumps({"id": 1, "host": "example.org\u0000.evil", "port": 80}).encode(),
        json.dumps({"id": 1, "host": "example.org", "port": "80"}).encode(),
        json.dumps({"id": 1, "host": "example.org", "port": True}).encode(),
        json.dumps({"id": 1, "host": "example.org", "port": 0}).encode(),
        json.dumps({"id": 1, "host": "example.org", "port": 65536}).encode(),
        json.dumps({"id": 1, "host": "example.org", "port": 80.5}).encode(),
        json.dumps({"id": {"a": [1]}, "host": "example.org", "port": 80}).encode(),
        json.dumps({"id": 1, "host": ["example.org"], "port": 80}).encode(),
        json.dumps({"id": 1, "host": "example.org", "port": 80, "timeout": "inf"}).encode(),
        b'{"id": 1, "host": "example.org", "port": 80, "timeout": NaN}',
        json.dumps({"id": 1, "host": "example.org", "port": 80, "extra": "x" * 100}).encode(),
        json.dumps([1, 2, 3]).encode(),
        b"\xff\xfe",
    ],
)
def test_every_malformed_request_is_refused_and_the_channel_lives_on(server: int, raw: bytes) -> None:
    egress, kernel_end = _egress(NetworkPolicy((f"127.0.0.1:{server}", "example.org")))
    try:
        kernel_end.sendall(raw)
    except OSError:  # larger than the socket takes at once: as good as refused, the channel must live on
        pass
    else:
        kernel_end.settimeout(5)
        data, fds, _, _ = socket.recv_fds(kernel_end, 65536, 1)
        assert json.loads(data)["errno"] == errno.EINVAL and fds == []
    reply, fds = _ask(kernel_end, host="127.0.0.1", port=server, timeout=5)
    assert reply["ok"] is True and len(fds) == 1
    os.close(fds[0])
    assert [c.host for c in egress.log] == ["127.0.0.1"]  # a malformed request records nothing
    egress.close()


def test_connection_requests_are_capped_per_session(server: int) -> None:
    egress, kernel_end = _egress(NetworkPolicy((f"127.0.0.1:{server}",), max_connections=3))
    replies = [_ask(kernel_end, host="127.0.0.1", port=server) for _ in range(5)]
    for _, fds in replies:
        for fd in fds:
            os.close(fd)
    assert [r["ok"] for r, _ in replies] == [True, True, True, False, False]
    assert "more than 3 connections" in replies[-1][0]["error"]
    assert len(egress.log) == 3
    egress.close()
