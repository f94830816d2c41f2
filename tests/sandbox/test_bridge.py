"""The bridge: frames, values, the tool dispatcher, and tool calls from a real kernel."""

import dataclasses
import datetime
import decimal
import fractions
import json
import os
import pathlib
import signal
import socket
import sys
import threading
import time
import uuid

import pytest

from codeact.errors import ConfigError
from codeact.sandbox._codec import (
    MAX_FRAME_BYTES,
    MAX_KERNEL_FRAME_BYTES,
    BridgeClosed,
    FrameChannel,
    FrameError,
    OpaqueValue,
    UnsendableValue,
    from_kernel,
    to_kernel,
)
from codeact.sandbox.base import BridgeLimits
from codeact.sandbox.bridge import KERNEL_PATH, KernelClient, KernelProcess, tool_definitions
from codeact.sandbox.guest.kernel import _is_request
from codeact.sandbox.guest.values import from_host, to_wire
from codeact.sandbox.guest.wire import TAG, Wire, scan_frame
from codeact.sandbox.process import ProcessSandbox
from codeact.tools import tool
from codeact.tools.dispatch import ToolDispatcher, preview_arguments


def frame(obj) -> bytes:
    body = json.dumps(obj).encode()
    return len(body).to_bytes(4, "big") + body


@pytest.fixture
def pair():
    host, kernel = socket.socketpair()
    yield FrameChannel(host), kernel
    host.close()
    kernel.close()


# -- frames -----------------------------------------------------------------------------------


def test_frames_round_trip_even_when_split(pair):
    channel, peer = pair
    data = frame({"op": "a", "n": 1}) + frame({"op": "b"})
    for i in range(len(data)):
        peer.sendall(data[i : i + 1])
    assert channel.recv(1) == {"op": "a", "n": 1}
    assert channel.recv(1) == {"op": "b"}
    channel.send({"op": "c"})
    size = int.from_bytes(peer.recv(4), "big")
    assert json.loads(peer.recv(size)) == {"op": "c"}


def test_recv_times_out_with_none(pair):
    channel, peer = pair
    started = time.monotonic()
    assert channel.recv(0.05) is None
    assert channel.recv(0) is None
    assert 0.04 < time.monotonic() - started < 1
    peer.sendall(frame({"op": "late"}))
    assert channel.recv(0) == {"op": "late"}


@pytest.mark.parametrize(
    "garbage, message",
    [
        ((MAX_FRAME_BYTES + 1).to_bytes(4, "big"), "over the"),
        ((5).to_bytes(4, "big") + b"\xff\xfe{}x", "not valid JSON"),
        (frame([1, 2]), "not an object"),
        (frame({"no": "op"}), "not an object"),
        ((200_000).to_bytes(4, "big") + b"[" * 200_000, "nested deeper"),  # deep nesting, refused before decoding
    ],
)
def test_malformed_frames_raise_frame_error(pair, garbage, message):
    channel, peer = pair
    peer.sendall(garbage)
    with pytest.raises(FrameError, match=message):
        channel.recv(2)


def test_closed_peer_raises_bridge_closed(pair):
    channel, peer = pair
    peer.close()
    with pytest.raises(BridgeClosed):
        channel.recv(1)


def test_oversized_outgoing_frame_is_refused(pair):
    channel, _ = pair
    with pytest.raises(FrameError, match="frame limit"):
        channel.send({"op": "x", "data": "a" * MAX_FRAME_BYTES})


# -- values -----------------------------------------------------------------------------------


def test_values_from_the_kernel_are_rebuilt_without_running_code():
    value = {"t": (1, [2, 3]), "s": {1, 2}, "b": b"\x00\xff", 5: "int key", (1, 2): "tuple key"}
    assert from_kernel(json.loads(json.dumps(to_wire(value)))) == value
    opaque = from_kernel({"__codeact__": "repr", "type": "os.system", "repr": "<built-in function system>"})
    assert opaque == OpaqueValue("os.system", "<built-in function system>")
    # forged or odd tags degrade to plain data, never to an error
    assert from_kernel({"__codeact__": "pickle", "data": "gASV"}) == {"__codeact__": "pickle", "data": "gASV"}
    assert from_kernel({"__codeact__": "set", "items": [[1], [1]]}) == {(1,)}
    assert from_kernel({"__codeact__": "bytes", "base64": 12}) == {"__codeact__": "bytes", "base64": 12}


def test_results_to_the_kernel_are_explicit_data_never_a_pickle():
    assert to_kernel({"a": [1, "x", None]}) == {"json": {"a": [1, "x", None]}}
    assert to_kernel((1, 2)) == {"json": {TAG: "tuple", "items": [1, 2]}}
    assert to_kernel(threading.Lock()) == {"json": {TAG: "opaque", "type": "_thread.lock"}}
    loop = []
    loop.append(loop)
    with pytest.raises(UnsendableValue, match="nests deeper"):
        to_kernel(loop)


@dataclasses.dataclass
class Client:
    api_key: str


@dataclasses.dataclass
class Page:
    items: list
    client: Client | None = None


def test_a_dataclass_result_crosses_as_its_fields_and_its_client_stays_on_the_host():
    secret = "sk-live-" + "k" * 30
    encoded = json.dumps(to_kernel(Page([1, 2], Client(secret))))
    assert secret not in encoded and "pickle" not in encoded
    page = from_host(json.loads(encoded)["json"])
    assert page.items == [1, 2] and repr(page.client) == "Client(api_key=<host object <redacted> (not sent into the sandbox)>)"


def test_safe_types_cross_both_ways_exactly():
    values = [
        datetime.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=datetime.timezone.utc),
        datetime.date(2024, 1, 2),
        datetime.time(3, 4, 5),
        datetime.timedelta(days=-1, seconds=5, microseconds=7),
        decimal.Decimal("1.10"),
        1 + 2j,
        uuid.UUID(int=5),
        b"\x00\xff",
        (1, frozenset({2})),
    ]
    for value in values:
        assert from_kernel(json.loads(json.dumps(to_wire(value)))) == value
        assert from_host(json.loads(json.dumps(to_kernel(value)["json"]))) == value


# -- the dispatcher ---------------------------------------------------------------------------


@tool
def add(a: int, b: int = 1) -> int:
    """Add two numbers."""
    return a + b


@tool
def fail(reason: str) -> str:
    """Always fails."""
    raise ValueError(reason)


def test_dispatcher_calls_tools_and_tells_the_listener():
    seen = []
    dispatcher = ToolDispatcher({"add": add, "fail": fail}, listener=seen.append)
    outcome = dispatcher.call("add", [2], {"b": 3})
    assert outcome.ok and outcome.value == 5
    assert outcome.record.arguments == {"a": 2, "b": 3} and outcome.record.result == 5
    failed = dispatcher.call("fail", kwargs={"reason": "bad city"})
    assert (failed.error_type, failed.error_message) == ("ValueError", "bad city")
    assert failed.record.error == "ValueError: bad city"
    assert [r.name for r in seen] == ["add", "fail"] and dispatcher.calls == 2


def test_dispatcher_reports_unknown_tools_and_bad_arguments():
    dispatcher = ToolDispatcher({"add": add})
    unknown = dispatcher.call("ad", [1])
    assert unknown.error_type == "NameError" and "did you mean `add`" in unknown.error_message
    bad = dispatcher.call("add", [], {"c": 1})
    assert bad.error_type == "TypeError" and bad.error_message.startswith("add():")


def test_policies_can_deny_with_a_reason():
    class NoBigNumbers:
        def allow(self, name, arguments):
            return arguments.get("a", 0) < 100 or "numbers over 100 need approval"

    dispatcher = ToolDispatcher({"add": add}, policies=[NoBigNumbers()])
    dispatcher.add_policy(lambda name, arguments: arguments.get("b") != 13)
    assert dispatcher.call("add", [1]).value == 2
    denied = dispatcher.call("add", [500])
    assert denied.error_type == "PermissionError" and "numbers over 100 need approval" in denied.error_message
    assert "not allowed by policy" in dispatcher.call("add", [1, 13]).error_message


def test_tool_definitions_carry_signature_parts():
    (definition,) = tool_definitions({"add": add})
    assert definition["signature"] == "add(a: int, b: int = 1) -> int"
    assert definition["params"][1] == {
        "name": "b",
        "kind": "POSITIONAL_OR_KEYWORD",
        "has_default": True,
        "annotation": "int",
        "default": "1",
    }


# -- tool calls from a real kernel ------------------------------------------------------------


class HostOnly:
    """A class the kernel cannot import (it lives in this test module)."""

    def __repr__(self):
        return "HostOnly()"


@tool
def rich(kind: str) -> object:
    """Return a rich value."""
    return {
        "date": datetime.date(2024, 1, 2),
        "fraction": fractions.Fraction(1, 3),
        "tuple": (1, (2, 3)),
        "set": {1, 2},
        "lock": threading.Lock(),
        "host_only": HostOnly(),
    }[kind]


@tool
def echo(value: object) -> object:
    """Return the value."""
    return value


@tool
def slow(seconds: float) -> str:
    """Sleep on the host."""
    time.sleep(seconds)
    return "done"


@pytest.fixture(scope="module")
def sandbox():
    calls = []
    with ProcessSandbox(timeout=10, interrupt_grace=0.5) as sb:
        sb.start({t.name: t for t in (add, fail, rich, echo, slow)}, on_tool_call=calls.append)
        sb.calls = calls
        yield sb


def test_tool_call_reaches_the_host_and_returns(sandbox):
    sandbox.calls.clear()
    run = sandbox.execute("total = add(2, b=40)\ntotal")
    assert run.result == "42"
    assert [(r.name, r.arguments, r.result) for r in run.tool_calls] == [("add", {"a": 2, "b": 40}, 42)]
    assert sandbox.calls == list(run.tool_calls)


def test_rich_results_arrive_as_real_objects(sandbox):
    assert sandbox.execute("rich('date').isoformat()").result == "'2024-01-02'"
    assert sandbox.execute("rich('tuple')").result == "(1, (2, 3))"
    assert sandbox.execute("sorted(rich('set'))").result == "[1, 2]"


def test_other_results_arrive_as_opaque_handles_naming_their_type(sandbox):
    assert sandbox.execute("rich('lock')").result == "<host object _thread.lock (not sent into the sandbox)>"
    run = sandbox.execute("rich('host_only')")
    assert run.result == f"<host object {__name__}.HostOnly (not sent into the sandbox)>"
    assert "HostOnly()" not in run.result  # not even its repr: a repr can hold a secret
    assert sandbox.execute("type(rich('fraction')).__name__").result == "'HostObject'"


def test_arguments_cross_as_data_not_objects(sandbox):
    run = sandbox.execute(
        "import datetime\necho({'t': (1, 2), 'b': b'x', 'when': datetime.date(2024, 1, 2)})"
    )
    assert run.ok
    argument = run.tool_calls[0].arguments["value"]
    assert argument["t"] == (1, 2) and argument["b"] == b"x"
    assert argument["when"] == datetime.date(2024, 1, 2)


def test_tool_exception_can_be_caught_by_the_code(sandbox):
    run = sandbox.execute("try:\n    fail('bad city')\nexcept ValueError as e:\n    caught = str(e)\ncaught")
    assert run.ok and run.result == "'ValueError: bad city'"
    uncaught = sandbox.execute("fail('bad city')")
    assert uncaught.error.type == "ToolCallError" and uncaught.error.message == "ValueError: bad city"
    assert "kernel.py" not in uncaught.error.traceback and "fail('bad city')" in uncaught.error.traceback


def test_tools_called_from_threads(sandbox):
    run = sandbox.execute(
        "from concurrent.futures import ThreadPoolExecutor\n"
        "with ThreadPoolExecutor(4) as pool:\n    results = list(pool.map(add, range(20)))\nresults == [i + 1 for i in range(20)]"
    )
    assert run.result == "True" and len(run.tool_calls) == 20


def test_time_in_tools_counts_against_the_timeout(sandbox):
    sandbox.execute("before = 1")
    started = time.monotonic()
    run = sandbox.execute("slow(3)\nimport time\ntime.sleep(5)", timeout=0.4)
    assert time.monotonic() - started < 2.5  # the tool was abandoned at the step's limit
    assert run.timed_out and not run.state_lost
    assert run.tool_calls[0].error.startswith("TimeoutError") and "abandoned" in run.tool_calls[0].error
    assert sandbox.execute("before").result == "1"


def test_set_tools_replaces_the_stubs(sandbox):
    with ProcessSandbox(timeout=10) as sb:
        sb.start({"add": add})
        assert sb.execute("add(1)").result == "2"
        sb.start({"echo": echo})
        assert sb.execute("echo(5)").result == "5"
        assert sb.execute("add").error.type == "NameError"
        with pytest.raises(ConfigError, match="final_answer"):
            sb.start({"final_answer": tool(name="final_answer")(echo.function)})


# -- a hostile kernel -------------------------------------------------------------------------

BRIDGE_FD = "import os, sys\nfd = int(sys.argv[sys.argv.index('--fd') + 1])\n"


@pytest.mark.parametrize(
    "payload",
    [
        "os.write(fd, b'garbage that is not a frame')",
        "os.write(fd, (2**31).to_bytes(4, 'big'))",
        "os.write(fd, (4).to_bytes(4, 'big') + b'nope')",
        "import json\nb = json.dumps({'op': 'done', 'id': 10**9, 'stdout': 1}).encode()\nos.write(fd, len(b).to_bytes(4, 'big') + b)",
        "import json\nb = json.dumps({'op': 'hello'}).encode()\nos.write(fd, len(b).to_bytes(4, 'big') + b)",
    ],
)
def test_forged_or_garbage_frames_restart_the_kernel(payload):
    with ProcessSandbox(timeout=5) as sb:
        sb.execute("state = 1")
        run = sb.execute(BRIDGE_FD + payload)
        assert run.state_lost and run.error.type == "KernelProtocolError"
        assert "fresh kernel was started" in run.error.message
        assert sb.execute("state").error.type == "NameError"
        assert sb.execute("2 + 2").result == "4"


def test_a_forged_done_frame_for_an_old_step_is_ignored():
    with ProcessSandbox(timeout=5) as sb:
        sb.execute("state = 1")
        forged = "import json\nb = json.dumps({'op': 'done', 'id': 1, 'stdout': 'forged'}).encode()\n"
        run = sb.execute(BRIDGE_FD + forged + "os.write(fd, len(b).to_bytes(4, 'big') + b)\nprint('real')")
        assert run.ok and run.stdout == "real\n"
        assert sb.execute("state").result == "1"


def test_kernel_closing_the_bridge_is_a_crash():
    with ProcessSandbox(timeout=5) as sb:
        run = sb.execute(BRIDGE_FD + "os.close(fd)\nimport time\ntime.sleep(0.2)")
        assert run.state_lost and run.error.type == "KernelDied"
        assert sb.execute("1").result == "1"


def test_client_with_a_custom_launch_command():
    commands = []

    def launch():
        def command(fd):
            argv = ["env", "CODEACT_MARK=1", sys.executable, str(KERNEL_PATH), "--fd", str(fd)]
            commands.append(argv)
            return argv

        return KernelProcess.spawn(command, env={"PATH": "/usr/bin:/bin"})

    client = KernelClient(launch)
    try:
        run = client.execute("import os\nos.environ.get('CODEACT_MARK')")
        assert run.result == "'1'" and commands
    finally:
        client.close()


# -- bounds on what the kernel sends (issue 8) ------------------------------------------------


def test_scan_counts_structure_not_text_inside_strings():
    assert scan_frame(json.dumps({"op": "call", "args": ["[" * 100_000 + "," * 600_000]}).encode()) is None
    assert "nested deeper" in scan_frame(b"[" * 65 + b"]" * 65)
    assert scan_frame(b"[" * 64 + b"]" * 64) is None
    assert "over the limit" in scan_frame(json.dumps([[]] * 600_000).encode())
    assert scan_frame(json.dumps(['a "quoted [ string', {"k": "\\\\"}]).encode()) is None


def test_frames_too_wide_or_too_large_are_refused_before_decoding(pair):
    channel, peer = pair
    threading.Thread(target=peer.sendall, args=(frame({"op": "call", "args": [[]] * 600_000}),), daemon=True).start()
    with pytest.raises(FrameError, match="over the limit"):
        channel.recv(5)
    host, kernel = socket.socketpair()
    try:
        kernel.sendall((MAX_KERNEL_FRAME_BYTES + 1).to_bytes(4, "big"))
        with pytest.raises(FrameError, match="over the"):
            FrameChannel(host).recv(2)
    finally:
        host.close()
        kernel.close()


def test_colliding_set_members_stay_a_list_instead_of_costing_quadratic_time():
    m = 2**61 - 1
    started = time.monotonic()
    value = from_kernel({TAG: "set", "items": [k * m for k in range(50_000)]})
    assert time.monotonic() - started < 1 and isinstance(value, list) and len(value) == 50_000
    assert from_kernel({TAG: "dict", "items": [[k * m, k] for k in range(1_000)]}) == [[k * m, k] for k in range(1_000)]
    assert from_kernel({TAG: "set", "items": [1, 2, m]}) == {1, 2, m}  # a few collisions are fine


def test_forged_tags_from_the_kernel_degrade_to_data():
    assert from_kernel({TAG: "datetime", "iso": "not a date"}) == {TAG: "datetime", "iso": "not a date"}
    assert from_kernel({TAG: "decimal", "text": "9" * 5_000}) == {TAG: "decimal", "text": "9" * 5_000}
    assert from_kernel({TAG: "record", "type": "x", "fields": {}}) == {TAG: "record", "type": "x", "fields": {}}
    assert from_kernel({TAG: "path", "path": "/etc"}) == pathlib.PurePosixPath("/etc")


def test_argument_previews_keep_small_arguments_and_cut_large_ones():
    small = {"a": 1, "b": "x" * 10}
    assert preview_arguments(small, 1_000) == small
    kept = preview_arguments({"text": "y" * 1_000_000, "data": b"z" * 500, "many": list(range(100_000))}, 2_000)
    assert len(repr(kept)) < 8_000
    assert kept["text"].endswith("[... 998,999 characters not kept ...]")
    assert "more items not kept" in kept["many"][-1]


def test_dispatcher_abandons_a_tool_at_its_timeout_and_the_next_call_works():
    dispatcher = ToolDispatcher({"slow": slow, "add": add})
    started = time.monotonic()
    outcome = dispatcher.call("slow", [3], timeout=0.2)
    assert time.monotonic() - started < 1
    assert outcome.error_type == "TimeoutError" and "abandoned" in outcome.error_message
    assert dispatcher.call("add", [1], timeout=1).value == 2
    dispatcher.close()


def test_limits_are_constructor_options(tmp_path):
    limits = BridgeLimits(max_calls_per_step=3, max_calls_per_session=5, tool_timeout=0.3, max_argument_chars=100)
    client = KernelClient(lambda: KernelProcess.spawn(), dispatcher=ToolDispatcher({"add": add, "slow": slow}),
                          limits=limits)
    try:
        run = client.execute("r = []\nfor i in range(4):\n    try:\n        r.append(add(i))\n    except PermissionError as e:"
                             "\n        r.append(str(e))\nr", timeout=10)
        assert run.result.startswith("[1, 2, 3, 'PermissionError: this step reached its limit of 3")
        assert "tool call(s) refused" in run.stderr
        run = client.execute("add(1)\nadd(2)\nadd(3)", timeout=10)
        assert "limit of 5 tool calls (max_calls_per_session)" in run.error.message
        assert len(run.tool_calls) == 2
    finally:
        client.close()
    client = KernelClient(lambda: KernelProcess.spawn(), dispatcher=ToolDispatcher({"echo": echo, "slow": slow}),
                          limits=limits)
    try:
        run = client.execute("slow(5)", timeout=None)  # no step limit: the tool's own limit holds
        assert run.error.message.startswith("TimeoutError") and run.duration_s < 2
        run = client.execute("echo('q' * 10_000)", timeout=10)
        assert len(run.tool_calls[0].arguments["value"]) < 300
    finally:
        client.close()


def test_calls_from_an_earlier_step_are_refused_and_stray_replies_ignored():
    with ProcessSandbox(timeout=10) as sb:
        sb.start({"add": add})
        run = sb.execute(
            "import threading, time\nresults = []\n"
            "def later():\n    time.sleep(0.3)\n    try:\n        results.append(add(1))\n"
            "    except Exception as e:\n        results.append(repr(e))\n"
            "threading.Thread(target=later).start()"
        )
        assert run.ok
        time.sleep(0.6)
        assert sb.execute("results").result.startswith("[\"RuntimeError('add(): tools can only be called while a step")
        assert sb.execute("add(41)").result == "42"


def test_the_kernel_wire_drops_stray_replies_and_never_hands_a_request_to_a_tool_caller():
    host, kernel_end = socket.socketpair()
    try:
        wire = Wire(kernel_end.fileno())
        for message in ({"op": "return", "id": 5, "json": "stray"}, {"op": "exec", "id": 1},
                        {"op": "return", "id": 7, "json": "mine"}):
            host.sendall(frame(message))
        with wire.cond:
            wire.waiting.add(7)
        got = {}
        caller = threading.Thread(target=lambda: got.update(reply=wire.wait_for(lambda f: f.get("id") == 7 and
                                                                               f["op"] == "return")))
        caller.start()
        assert wire.wait_for(_is_request) == {"op": "exec", "id": 1}
        caller.join(5)
        assert got["reply"]["json"] == "mine"
        assert wire.inbox == []  # the stray reply was dropped, not kept
    finally:
        host.close()
        kernel_end.close()


def test_ctrl_c_on_the_host_while_tools_run_keeps_the_kernel_state():
    with ProcessSandbox(timeout=30) as sb:
        sb.start({"add": add, "slow": slow})
        sb.execute("kept = 1")
        timer = threading.Timer(0.4, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            sb.execute("while True:\n    add(1)\n    slow(0.01)")
        timer.join()
        assert sb.execute("kept").result == "1"
        assert sb.execute("add(kept)").result == "2"


def test_close_from_another_thread_while_tools_run_ends_the_step():
    sb = ProcessSandbox(timeout=30)
    sb.start({"add": add})
    threading.Timer(0.3, sb.close).start()
    started = time.monotonic()
    run = sb.execute("while True:\n    add(1)")
    assert run.state_lost and time.monotonic() - started < 5 and "closed" in run.error.message


def test_numpy_arrays_cross_as_dtype_shape_and_bytes():
    numpy = pytest.importorskip("numpy")

    @tool
    def matrix(n: int) -> object:
        """A matrix."""
        return {"m": numpy.arange(n * 3, dtype=numpy.float32).reshape(n, 3), "s": numpy.int64(7)}

    encoded = to_kernel(matrix(2))["json"]
    assert encoded["m"][TAG] == "ndarray" and encoded["s"] == 7
    with ProcessSandbox(timeout=10) as sb:
        sb.start({"matrix": matrix})
        run = sb.execute("r = matrix(2)\n(type(r['m']).__name__, str(r['m'].dtype), r['m'].shape, float(r['m'].sum()), r['s'])")
        assert run.result == "('ndarray', 'float32', (2, 3), 15.0, 7)"
