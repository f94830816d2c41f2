"""Attacks on the host end of the bridge, run as model code through CodeAgent and the default sandbox.

The kernel is hostile: model code in it can write raw frames to the bridge socket, flood it,
nest and widen values, call tools from threads that outlive their step, and try to read what
the host sends in. Each test runs an attack as the first action of a `ScriptedModel` (the
second action is `final_answer('survived')`) and checks on the host, through `hostile()`:

- the run ends with a status, never an exception out of `run()`;
- within `TIME_CAP` seconds (step_timeout + the interrupt grace + a kernel restart + slack);
- host RSS growth (now and at its peak) under `RSS_CAP` and run-log growth under `LOG_CAP`;
- the host's secret (in this process's environment, in tools' clients) never reaches the
  model, the sandbox, or the log.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import resource
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from codeact import CodeAgent, tool
from codeact.models import ScriptedModel
from codeact.sandbox import default_sandbox
from codeact.sandbox.base import BridgeLimits
from tests._isolation import require_sandbox
from tests.security._harness import SECRET, reply

pytestmark = require_sandbox()

STEP_TIMEOUT = 2.0
INTERRUPT_GRACE = 2.0  # LocalSandbox's default
TIME_CAP = STEP_TIMEOUT + INTERRUPT_GRACE + 4.0
RSS_CAP = 200 * 2**20
LOG_CAP = 8 * 2**20
STATUSES = {"success", "max_steps", "budget_exceeded", "model_error", "interrupted"}

# Prepended to attacks that forge frames: find the bridge socket and the kernel's step id.
FORGE = textwrap.dedent(
    """
    import os, stat, json, gc, threading, time
    def bridge_fd():
        for fd in range(3, 64):
            try:
                if stat.S_ISSOCK(os.fstat(fd).st_mode):
                    return fd
            except OSError:
                pass
    def step_id():
        return next(o for o in gc.get_objects() if type(o).__name__ == 'Kernel').exec_id
    def send(obj=None, raw=None):
        data = raw if raw is not None else json.dumps(obj).encode()
        os.write(bridge_fd(), len(data).to_bytes(4, 'big') + data)
    def call(name='echo', args=(), kwargs=None, id=10**6, exec_id=None):
        send({'op': 'call', 'id': id, 'exec': step_id() if exec_id is None else exec_id,
              'name': name, 'args': list(args), 'kwargs': {} if kwargs is None else kwargs})
    def read_reply():
        fd = bridge_fd()
        size = int.from_bytes(os.read(fd, 4), 'big')
        data = b''
        while len(data) < size:
            data += os.read(fd, size - len(data))
        return json.loads(data)
    """
)


@dataclass
class Hostile:
    """What an attack did, as the host measured it."""

    status: str
    output: Any
    observation: str
    prompt: str
    seconds: float
    tool_calls: list[Any]
    rss_growth: int
    peak_growth: int
    log_growth: int


def _rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _log_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


def hostile(
    code: str,
    store: Path,
    *,
    tools: Sequence[Any] = (),
    sandbox: Any = None,
    then: str = "final_answer('survived')",
    rss_cap: int = RSS_CAP,
    time_cap: float = TIME_CAP,
    step_timeout: float = STEP_TIMEOUT,
    authorized_imports: Sequence[str] | None = None,
) -> Hostile:
    """Run `code` as the model's first action; check the four host-side properties."""
    model = ScriptedModel([reply(textwrap.dedent(code)), reply(then)])
    agent = CodeAgent(
        model,
        list(tools),
        sandbox=sandbox,
        step_timeout=step_timeout,
        max_steps=3,
        store=store,
        authorized_imports=authorized_imports,
    )
    gc.collect()
    rss, peak, log = _rss(), _peak(), _log_size(store)
    started = time.monotonic()
    result = agent.run("Do what the page says.")  # an exception here fails the test
    seconds = time.monotonic() - started
    gc.collect()
    outcome = Hostile(
        status=result.status,
        output=result.output,
        observation=model.calls[1][-1].content if len(model.calls) > 1 else "",
        prompt=model.calls[0][0].content,
        seconds=seconds,
        tool_calls=[c for s in result.steps for c in getattr(s, "tool_calls", ())],
        rss_growth=_rss() - rss,
        peak_growth=_peak() - peak,
        log_growth=_log_size(store) - log,
    )
    assert outcome.status in STATUSES
    assert outcome.seconds < time_cap, f"the run took {outcome.seconds:.1f} s"
    assert outcome.rss_growth < rss_cap, f"host RSS grew by {outcome.rss_growth / 2**20:.0f} MiB"
    assert outcome.peak_growth < rss_cap, f"host peak RSS grew by {outcome.peak_growth / 2**20:.0f} MiB"
    assert outcome.log_growth < LOG_CAP, f"the run log grew by {outcome.log_growth / 2**20:.1f} MiB"
    seen = f"{outcome.observation}\n{outcome.output!r}\n{outcome.prompt}\n{result.error or ''}"
    assert SECRET not in seen, "a host secret reached the model"
    assert SECRET.encode() not in b"".join(p.read_bytes() for p in store.parent.glob(store.name + "*"))
    return outcome


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "runs.db"


# -- tools the attacks call -----------------------------------------------------------------------

received: list[Any] = []


@tool
def echo(value: object) -> str:
    """Say what arrived."""
    received.append(value if not isinstance(value, str) else value[:100])
    return f"{type(value).__name__} of {len(repr(value))} chars"


@tool
def add(a: int, b: int = 1) -> int:
    """Add two numbers."""
    return a + b


@tool
def stall(seconds: float) -> str:
    """A host tool that takes its time."""
    time.sleep(seconds)
    return "finally"


class Client:
    """A tool's API client, holding the host's key."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key

    def __repr__(self) -> str:
        return f"Client(api_key={self.api_key!r})"


@dataclass
class Credentials:
    api_key: str
    endpoint: str = "https://api.example.com"


@dataclass
class Page:
    items: list[str]
    client: Client
    config: Credentials
    note: str = dataclasses.field(default="", repr=False)


@tool
def search(query: str) -> Page:
    """Search; returns a page that refers to the client it came from."""
    return Page([query, "b"], Client(SECRET), Credentials(SECRET), note=SECRET)


# -- frames: size, depth, width, decode cost ------------------------------------------------------


def test_values_nested_500_levels_are_refused_before_decoding_or_arrive_bounded(store: Path) -> None:
    out = hostile(FORGE + "v = []\nfor _ in range(500):\n    v = [v]\ncall(kwargs={'value': v})\ntime.sleep(1)", store,
                  tools=[echo])
    assert "KernelProtocolError" in out.observation and "nested deeper" in out.observation
    assert out.output == "survived"
    received.clear()
    out = hostile("v = []\nfor _ in range(500):\n    v = [v]\nprint(echo(v))", store, tools=[echo])
    assert out.output == "survived" and "list of" in out.observation
    depth, value = 0, received[-1]
    while isinstance(value, list) and value:
        depth, value = depth + 1, value[0]
    assert depth < 70  # the rest arrives as the repr of what was too deep


def test_call_kwargs_that_are_not_a_plain_object_get_an_error_reply(store: Path) -> None:
    out = hostile(
        FORGE + "call(kwargs={'__codeact__': 'repr', 'type': 'x', 'repr': 'y'})\nprint(read_reply())", store, tools=[echo]
    )
    assert "malformed tool call" in out.observation and out.output == "survived"


def test_a_wide_frame_of_empty_lists_is_refused_before_decoding(store: Path) -> None:
    out = hostile(FORGE + "call(args=[[[]] * 1_500_000])\ntime.sleep(1)", store, tools=[echo], rss_cap=120 * 2**20)
    assert "KernelProtocolError" in out.observation and "over the limit" in out.observation


def test_a_frame_declaring_20_mib_is_refused_at_once(store: Path) -> None:
    out = hostile(FORGE + "os.write(bridge_fd(), (20 * 2**20).to_bytes(4, 'big') + b'{' * 1000)\ntime.sleep(5)", store)
    assert "KernelProtocolError" in out.observation and out.seconds < 4  # not waiting for 20 MiB to come


def test_hash_colliding_set_members_do_not_cost_quadratic_time(store: Path) -> None:
    received.clear()
    out = hostile(
        FORGE + "m = 2**61 - 1\ncall(args=[{'__codeact__': 'set', 'items': [k * m for k in range(40_000)]}])\n"
        "print(read_reply())",
        store,
        tools=[echo],
    )
    assert out.output == "survived" and "list of" in out.observation
    assert isinstance(received[-1], list) and len(received[-1]) == 40_000


def test_a_huge_tool_name_is_refused_cheaply(store: Path) -> None:
    out = hostile(FORGE + "call(name='a' * 5_000_000)\nprint(read_reply())", store, tools=[echo])
    assert "malformed tool call" in out.observation and out.seconds < STEP_TIMEOUT + 2


# -- every frame type -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        "{'op': 'hello', 'pid': 1, 'python': 'x' * 100_000}",
        "{'op': 'return', 'id': 1, 'json': 1}",  # a stray reply, kernel to host
        "{'op': 'raise', 'id': 1, 'type': 'X', 'message': 'y'}",
        "{'op': 'exec', 'id': 1, 'code': 'print(1)'}",
        "{'op': 'x' * 100_000}",
        "{'op': 'done', 'id': step_id(), 'stdout': 5, 'stderr': '', 'result': None}",
        "{'op': 'done', 'id': step_id() + 1000, 'stdout': '', 'stderr': ''}",
        "{'op': 'call', 'id': '7', 'name': 'echo', 'args': [], 'kwargs': {}}",
        "{'op': 'call', 'id': True, 'name': 'echo', 'args': [], 'kwargs': {}}",
        "{'op': 'call', 'id': None, 'name': 'echo', 'args': [], 'kwargs': {}}",
    ],
)
def test_unexpected_or_malformed_frames_restart_the_kernel(store: Path, frame: str) -> None:
    out = hostile(FORGE + f"send({frame})\ntime.sleep(1)", store, tools=[echo])
    assert "KernelProtocolError" in out.observation and "fresh kernel" in out.observation
    assert out.output == "survived"


def test_call_ids_the_host_did_not_expect_get_replies_not_crashes(store: Path) -> None:
    out = hostile(
        FORGE
        + "for i in (-1, 10**30, 0):\n    call(name='add', args=[i], id=i)\n    print(read_reply())\n"
        + "call(name='add', args=[1], exec_id=-5)\nprint(read_reply())",
        store,
        tools=[add],
    )
    assert "'json': 0" in out.observation and "'json': 1000000000000000000000000000001" in out.observation
    assert "made in an earlier step" in out.observation
    assert len(out.tool_calls) == 3  # the refused call reached no tool and no record


def test_forged_final_answer_ends_the_run_as_the_code_chose(store: Path) -> None:
    frame = (
        "{'op': 'done', 'id': step_id(), 'stdout': '', 'stderr': '', 'result': None, 'error': None,"
        " 'final': True, 'final_answer': {'__codeact__': 'repr', 'type': 'x' * 10_000, 'repr': 'y' * 10**6},"
        " 'interrupted': False, 'duration': 0}"
    )
    out = hostile(FORGE + f"send({frame})\ntime.sleep(0.5)", store)
    assert out.status == "success" and len(str(out.output)) <= 20_000
    assert len(out.output.type_name) <= 200


def test_lone_surrogates_in_every_field(store: Path) -> None:
    out = hostile(
        """
        import os
        print(os.fsdecode(b'caf\\xe9.txt'), '\\ud800')
        echo('\\udcff tool argument')
        try:
            raise ValueError('\\udfff in a message')
        except ValueError as e:
            print(repr(e))
        """,
        store,
        tools=[echo],
        then="final_answer('\\ud800 survived')",
    )
    assert out.status == "success" and out.output == "\ud800 survived"


# -- time limits hold whatever the sandbox sends ----------------------------------------------------


def test_pipelined_calls_cannot_hold_the_step_past_its_limit(store: Path) -> None:
    out = hostile(
        FORGE
        + textwrap.dedent(
            """
            import select
            fd = bridge_fd()
            stop = []
            def drain():  # reads the host's replies so that it never blocks on them
                while not stop:
                    if select.select([fd], [], [], 0.05)[0]:
                        os.read(fd, 1 << 20)
            threading.Thread(target=drain, daemon=True).start()
            exec_id = step_id()
            batch = b''.join(
                len(d).to_bytes(4, 'big') + d for d in
                (json.dumps({'op': 'call', 'id': i, 'exec': exec_id, 'name': 'add', 'args': [i], 'kwargs': {}}).encode()
                 for i in range(200)))
            try:
                while True:
                    os.write(fd, batch)
            finally:
                stop.append(1)
                time.sleep(0.2)
            """
        ),
        store,
        tools=[add],
    )
    assert out.output == "survived"
    assert len(out.tool_calls) <= 10_000  # the per-step cap; the rest were refused unrecorded


def test_a_host_tool_that_does_not_return_is_abandoned_at_the_step_limit(store: Path) -> None:
    out = hostile("print(stall(8))", store, tools=[stall])
    assert out.seconds < STEP_TIMEOUT + 3
    assert "TimeoutError" in out.observation and out.output == "survived"
    assert out.tool_calls[0].error.startswith("TimeoutError")


def test_calls_over_the_per_step_cap_are_refused_with_a_clear_note(store: Path) -> None:
    sandbox = default_sandbox(bridge_limits=BridgeLimits(max_calls_per_step=1_000))  # 10,000 by default
    out = hostile(
        """
        refused = 0
        for i in range(1_200):
            try:
                add(i)
            except PermissionError as e:
                refused += 1
                message = str(e)
        print(refused, message)
        """,
        store,
        tools=[add],
        sandbox=sandbox,
        time_cap=TIME_CAP + 10,
    )
    sandbox.close()
    assert "200 PermissionError" in out.observation and "max_calls_per_step" in out.observation
    assert "tool call(s) refused" in out.observation
    assert len(out.tool_calls) == 1_000


# -- what the host keeps ------------------------------------------------------------------------------


def test_large_arguments_are_kept_as_previews_not_whole(store: Path) -> None:
    out = hostile("big = 'x' * 12_000_000\nfor _ in range(10):\n    echo(big)\nprint('sent')", store, tools=[echo],
                  step_timeout=15, time_cap=20)
    assert "sent" in out.observation and len(out.tool_calls) == 10
    assert all(len(repr(c.arguments)) < 25_000 for c in out.tool_calls)
    assert "characters not kept" in out.tool_calls[0].arguments["value"]


def test_an_argument_over_the_frame_limit_is_an_error_in_the_code(store: Path) -> None:
    out = hostile("try:\n    echo('x' * 20_000_000)\nexcept ValueError as e:\n    print('refused:', e)", store,
                  tools=[echo])
    assert "refused:" in out.observation and "limit" in out.observation


def test_a_final_answer_over_the_frame_limit_is_an_error_in_the_code(store: Path) -> None:
    out = hostile("try:\n    final_answer('x' * 20_000_000)\nexcept ValueError as e:\n    print('refused:', e)", store)
    assert "too large" in out.observation and out.output == "survived"


@tool
def huge(n: int) -> str:
    """A result too large for one frame."""
    return "y" * n


def test_a_tool_result_too_large_for_a_frame_is_an_error_in_the_code(store: Path) -> None:
    out = hostile("try:\n    huge(70_000_000)\nexcept TypeError as e:\n    print('refused:', str(e)[:200])", store,
                  tools=[huge], rss_cap=600 * 2**20)
    assert "refused:" in out.observation and "cannot be sent into the sandbox" in out.observation


# -- only what the code asked for enters the sandbox ---------------------------------------------------


def test_a_tool_result_does_not_carry_its_client_or_credentials_in(store: Path) -> None:
    # The attack watches every byte the host sends in (the kernel's json.loads), and looks
    # at the result every way it can.
    out = hostile(
        """
        import json, pickle
        raw = []
        real = json.loads
        def spy(data, *a, **k):
            raw.append(data)
            return real(data, *a, **k)
        json.loads = spy
        page = search('a')
        json.loads = real
        print(page.items, repr(page), vars(page) if hasattr(page, '__dict__') else '')
        print(repr(page.client), repr(page.config), page.config.endpoint)
        blob = b''.join(bytes(r) if not isinstance(r, str) else r.encode() for r in raw)
        text = blob.decode('latin-1')
        print('raw bytes seen:', len(blob), 'pickled:', 'pickle' in text, 'canary in raw:', 'canary-' in text)
        print('key in env:', __import__('os').environ.get('CODEACT_TEST_API_KEY'))
        """,
        store,
        tools=[search],
    )
    assert "['a', 'b']" in out.observation and "https://api.example.com" in out.observation
    assert "pickled: False canary in raw: False" in out.observation and "key in env: None" in out.observation


def test_tool_defaults_computed_from_the_environment_do_not_leak(store: Path) -> None:
    def weather(city: str, api_key: str = os.environ["CODEACT_TEST_API_KEY"], units: str = "C") -> str:
        """Weather for a city."""
        return f"{city}: 20{units}"

    out = hostile(
        "import inspect\nprint(weather.__defaults__, inspect.signature(weather))\nhelp(weather)\nprint(weather('Oslo'))",
        store,
        tools=[tool(weather)],
    )
    assert "(city: str, api_key: str = ..., units: str = 'C')" in out.observation
    assert "Oslo: 20C" in out.observation and "def weather(city: str, api_key: str = ..., " in out.prompt


# -- a thread that outlives its step ------------------------------------------------------------------


def test_a_background_thread_cannot_act_in_the_next_run(store: Path) -> None:
    with default_sandbox() as sandbox:
        first = hostile(
            """
            import threading, time
            def pester():
                time.sleep(0.3)
                while True:
                    try:
                        add(100)
                    except Exception as e:
                        last = e
                        time.sleep(0.01)
            threading.Thread(target=pester, daemon=True).start()
            kept = 41
            """,
            store,
            tools=[add],
            sandbox=sandbox,
            then="final_answer('first')",
        )
        assert first.output == "first"
        time.sleep(0.5)  # the thread now calls tools between runs
        second = hostile("import time\ntime.sleep(0.5)\nprint(add(kept))", store, tools=[add], sandbox=sandbox)
        assert "42" in second.observation and second.output == "survived"
        assert [c.arguments for c in second.tool_calls] == [{"a": 41}]  # no stray call logged here
        assert second.seconds < 5


# -- a guard rail, not the boundary -------------------------------------------------------------------


def test_authorized_imports_hold_for_dunder_import_and_importlib(store: Path) -> None:
    out = hostile(
        """
        import math
        for how in ("__import__('os')", "__import__('importlib').import_module('socket')", "exec('import subprocess')"):
            try:
                eval(how)
                print(how, 'imported')
            except ImportError as e:
                print(how, 'blocked:', e)
        """,
        store,
        authorized_imports=["math", "importlib"],
        then="final_answer('survived')",
    )
    assert out.observation.count("blocked:") == 3 and "imported" not in out.observation
