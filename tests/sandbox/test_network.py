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
