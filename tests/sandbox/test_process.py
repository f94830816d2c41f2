"""ProcessSandbox: life cycle, environment, timeouts and crash recovery with real kernels."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from codeact.errors import ConfigError, SandboxError
from codeact.sandbox.base import Sandbox
from codeact.sandbox.process import ProcessSandbox


@pytest.fixture
def sandbox():
    with ProcessSandbox(timeout=10, interrupt_grace=0.5) as sb:
        yield sb


def test_is_a_sandbox_that_says_it_does_not_isolate():
    assert issubclass(ProcessSandbox, Sandbox) and ProcessSandbox.kind == "process"
    assert "does NOT isolate" in ProcessSandbox.__doc__


def test_starts_lazily_and_runs_in_its_workspace(sandbox):
    run = sandbox.execute("import os\nos.getcwd(), os.environ['HOME']")
    workspace = str(sandbox.workspace)
    assert run.result == repr((workspace, workspace))
    assert sandbox.execute("open('notes.txt', 'w').write('hi')").ok
    assert (sandbox.workspace / "notes.txt").read_text() == "hi"


def test_modules_written_to_the_workspace_are_importable(sandbox):
    sandbox.execute("open('helper_mod.py', 'w').write('VALUE = 7')")
    assert sandbox.execute("import helper_mod\nhelper_mod.VALUE").result == "7"
    assert (
        sandbox.execute("import bridge").error.type == "ModuleNotFoundError"
    )  # codeact's files are not on the path


def test_host_secrets_are_not_in_the_kernel_environment(monkeypatch, sandbox):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret")
    run = sandbox.execute("import os\nsorted(os.environ), open('/proc/self/environ', 'rb').read()")
    assert run.ok and "sk-very-secret" not in run.result and "OPENAI_API_KEY" not in run.result


def test_explicit_env_and_workspace_are_used_and_kept(tmp_path):
    with ProcessSandbox(workspace=tmp_path, env={"PATH": os.defpath, "MY_SETTING": "on"}) as sb:
        assert sb.execute("import os\nos.environ.get('MY_SETTING'), os.getcwd()").result == repr(
            ("on", str(tmp_path))
        )
    assert tmp_path.is_dir()  # a workspace the caller gave is not deleted


def test_temporary_workspace_is_removed_on_close():
    sb = ProcessSandbox()
    sb.execute("open('f', 'w').write('x')")
    workspace = sb.workspace
    sb.close()
    sb.close()  # twice is fine
    assert not workspace.exists()
    with pytest.raises(SandboxError, match="closed"):
        sb.execute("1")


def test_bad_options_and_missing_python_fail_clearly():
    with pytest.raises(ConfigError):
        ProcessSandbox(timeout=0)
    with pytest.raises(ConfigError):
        ProcessSandbox(max_output_chars=0)
    with (
        ProcessSandbox(python="/nonexistent/python3") as sb,
        pytest.raises(SandboxError, match="cannot start"),
    ):
        sb.execute("1")
    with ProcessSandbox(python=sys.executable, env={"PYTHONPATH": "/x", "PYTHONSTARTUP": "/x"}) as sb:
        assert sb.execute("1").result == "1"


def test_max_output_chars_is_applied():
    with ProcessSandbox(max_output_chars=100) as sb:
        run = sb.execute("print('a' * 1000)")
        assert len(run.stdout) < 200 and "characters truncated" in run.stdout


# -- timeouts ---------------------------------------------------------------------------------


def test_timeout_interrupts_and_keeps_state(sandbox):
    sandbox.execute("x = 41")
    started = time.monotonic()
    run = sandbox.execute("while True:\n    x = 42", timeout=0.5)
    assert time.monotonic() - started < 2
    assert run.timed_out and not run.state_lost
    assert (
        run.error.type == "TimeoutError" and "variables" in run.error.message and "kept" in run.error.message
    )
    assert 'File "<step' in run.error.traceback
    assert sandbox.execute("x").result == "42"


def test_timeout_interrupts_sleep_and_subprocesses(sandbox):
    run = sandbox.execute("import subprocess\nsubprocess.run(['sleep', '30'])", timeout=0.5)
    assert run.timed_out and not run.state_lost
    assert sandbox.execute("import time\ntime.sleep(30)", timeout=0.3).timed_out


def test_code_that_ignores_sigint_is_killed_and_replaced(sandbox):
    sandbox.execute("y = 1")
    started = time.monotonic()
    run = sandbox.execute(
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass", timeout=0.3
    )
    assert time.monotonic() - started < 3
    assert run.timed_out and run.state_lost
    assert "killed" in run.error.message and "lost" in run.error.message
    assert sandbox.execute("y").error.type == "NameError"
    assert sandbox.execute("1 + 1").result == "2"


def test_code_that_swallows_keyboard_interrupt_is_killed(sandbox):
    code = "import time\nwhile True:\n    try:\n        time.sleep(10)\n    except KeyboardInterrupt:\n        pass"
    run = sandbox.execute(code, timeout=0.3)
    assert run.timed_out and run.state_lost


def test_sigint_ignored_last_step_is_restored_next_step(sandbox):
    sandbox.execute("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)")
    run = sandbox.execute("while True:\n    pass", timeout=0.3)
    assert run.timed_out and not run.state_lost


def test_ctrl_c_on_the_host_stops_the_step_but_keeps_state(sandbox):
    sandbox.execute("kept = 1")
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        sandbox.execute("import time\nwhile True:\n    time.sleep(0.01)")
    timer.join()
    assert sandbox.execute("kept").result == "1"


def test_close_from_another_thread_ends_a_running_step():
    sb = ProcessSandbox(timeout=30)
    threading.Timer(0.3, sb.close).start()
    started = time.monotonic()
    run = sb.execute("while True:\n    pass")
    assert run.state_lost and time.monotonic() - started < 5
    assert "closed" in run.error.message


# -- crashes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code, reason",
    [
        ("import ctypes\nctypes.string_at(0)", "SIGSEGV"),
        ("import os\nos._exit(3)", "exited with status 3"),
        ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "SIGKILL"),
    ],
)
def test_crashes_lose_state_and_the_next_step_works(sandbox, code, reason):
    sandbox.execute("z = 1")
    run = sandbox.execute(code)
    assert run.state_lost and not run.timed_out
    assert run.error.type == "KernelDied" and reason in run.error.message
    assert "fresh kernel was started" in run.error.message
    assert sandbox.execute("z").error.type == "NameError"
    assert sandbox.execute("2 * 21").result == "42"


def test_segfault_report_points_at_the_action(sandbox):
    run = sandbox.execute("import ctypes\n\nctypes.string_at(0)")
    assert "Fatal Python error: Segmentation fault" in run.error.traceback
    assert '"<step' in run.error.traceback and "line 3" in run.error.traceback


# -- the kernel must not outlive the host -----------------------------------------------------

HOST = textwrap.dedent(
    """
    import sys, threading
    from codeact.sandbox.process import ProcessSandbox

    def main():
        sb = ProcessSandbox(timeout=60)
        print(sb.execute("import os\\nos.getpid()").result, flush=True)
        sb.execute("while True:\\n    pass")

    if sys.argv[1] == "thread":  # PR_SET_PDEATHSIG cannot be used: the socket hang-up watch must act
        threading.Thread(target=main).start()
    else:
        main()
    """
)


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


@pytest.mark.parametrize("where", ["main", "thread"])
def test_kernel_dies_with_its_host(where):
    host = subprocess.Popen([sys.executable, "-c", HOST, where], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(host.stdout.readline())
        time.sleep(0.2)
        assert not _gone(pid)
    finally:
        host.send_signal(signal.SIGKILL)
        host.wait()
    deadline = time.monotonic() + 5
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(pid)
