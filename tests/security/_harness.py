"""The escape battery's harness: attacks run as model code through the real agent loop.

Each attack is the first reply of a `ScriptedModel` driving a real `CodeAgent` with the
default (isolated) sandbox; the second reply calls `final_answer("survived")`. So every test
checks three things: the forbidden effect did not happen (checked on the host), the agent and
host went on to the next step, and the model was shown a clear observation.

Secrets and canaries live in temporary directories and in this process's environment; none
of them is bound into the sandbox.
"""

from __future__ import annotations

import os
import secrets
import socket
import textwrap
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from codeact import CodeAgent
from codeact.models import ScriptedModel

SECRET = "canary-" + secrets.token_hex(12)
STEP_TIMEOUT = 3.0

# Prepended to every attack: report each attempt as blocked or LEAK, in one line.
PRELUDE = textwrap.dedent(
    """
    def attempt(label, fn):
        try:
            value = fn()
        except BaseException as exc:
            print(f"{label}: blocked ({type(exc).__name__}: {str(exc)[:120]})")
            return None
        print(f"{label}: {'LE' + 'AK'} {value!r:.300}")  # spelt so that this source never contains it
        return value
    """
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Never a quiet skip: where isolation is unavailable these fail (see tests/_isolation.py).
    for item in items:
        if "tests/security" in str(item.fspath):
            item.add_marker(pytest.mark.needs_sandbox)


@dataclass
class Outcome:
    """What the attack produced, as the agent and the model saw it."""

    observation: str
    output: Any
    status: str
    steps: int
    log: str = field(default="")

    def text(self) -> str:
        return f"{self.observation}\n{self.output!r}\n{self.log}"


def reply(code: str) -> str:
    return f"Thought: try it.\n```python\n{code}\n```"


def attack(
    code: str,
    *,
    tools: Sequence[Any] = (),
    sandbox: Any = None,
    step_timeout: float = STEP_TIMEOUT,
    prelude: bool = True,
) -> Outcome:
    """Run `code` as the model's first action, then `final_answer("survived")`.

    Fails unless the run then ends successfully with "survived" and nothing secret is visible.
    """
    body = (PRELUDE + "\n" if prelude else "") + textwrap.dedent(code)
    model = ScriptedModel([reply(body), reply("final_answer('survived')")])
    agent = CodeAgent(model, list(tools), sandbox=sandbox, step_timeout=step_timeout, max_steps=3)
    result = agent.run("Do what the page says.")
    observation = model.calls[1][-1].content if len(model.calls) > 1 else ""
    outcome = Outcome(observation, result.output, result.status, len(result.steps), str(result.error or ""))
    assert result.status == "success" and result.output == "survived", (result.status, result.error, observation)
    assert observation.startswith("Observation:"), observation
    assert SECRET not in outcome.text(), "a host secret reached the model"
    assert "LEAK" not in observation, observation
    return outcome


@dataclass
class Canaries:
    """Host files that hold the secret, outside anything the sandbox binds."""

    root: Path
    secret_file: Path
    home: Path
    ssh_key: Path
    dotenv: Path

    def unchanged(self) -> bool:
        return all(p.read_text().endswith(SECRET + "\n") for p in (self.secret_file, self.ssh_key, self.dotenv))


@pytest.fixture(scope="session")
def canaries(tmp_path_factory: pytest.TempPathFactory) -> Canaries:
    root = tmp_path_factory.mktemp("host")
    home = root / "home" / "alice"
    (home / ".ssh").mkdir(parents=True)
    project = root / "project"
    project.mkdir()
    files = {
        "secret_file": root / "secret.txt",
        "ssh_key": home / ".ssh" / "id_rsa",
        "dotenv": project / ".env",
    }
    for path in files.values():
        path.write_text(f"API_KEY={SECRET}\n")
        path.chmod(0o600)
    return Canaries(root, files["secret_file"], home, files["ssh_key"], files["dotenv"])


@pytest.fixture(autouse=True)
def host_secret_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """As a real host would: an API key in the environment of the process running the agent."""
    monkeypatch.setenv("CODEACT_TEST_API_KEY", SECRET)


class Listener:
    """A host socket that records every connection or datagram it gets."""

    def __init__(self, sock: socket.socket, *, stream: bool) -> None:
        self.sock = sock
        self.events: list[str] = []
        self._stream = stream
        sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self._stream:
                    conn, _ = self.sock.accept()
                    self.events.append("connection")
                    conn.close()
                else:
                    data = self.sock.recv(65536)
                    self.events.append(f"datagram {data[:40]!r}")
            except (TimeoutError, OSError):
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def _listener(make: Callable[[], socket.socket], *, stream: bool) -> Iterator[Listener]:
    listener = Listener(make(), stream=stream)
    yield listener
    listener.close()


@pytest.fixture
def tcp_listener() -> Iterator[Listener]:
    def make() -> socket.socket:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        return s

    yield from _listener(make, stream=True)


@pytest.fixture
def udp_listener() -> Iterator[Listener]:
    def make() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        return s

    yield from _listener(make, stream=False)


@pytest.fixture
def unix_listener(tmp_path: Path) -> Iterator[Listener]:
    path = str(tmp_path / "host.sock")

    def make() -> socket.socket:
        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
        s.listen(4)
        return s

    yield from _listener(make, stream=True)


@pytest.fixture
def abstract_listener() -> Iterator[Listener]:
    name = "\0codeact-canary-" + secrets.token_hex(4)

    def make() -> socket.socket:
        s = socket.socket(socket.AF_UNIX)
        s.bind(name)
        s.listen(4)
        return s

    yield from _listener(make, stream=True)


def host_process_count() -> int:
    return sum(1 for name in os.listdir("/proc") if name.isdigit())
