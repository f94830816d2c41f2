"""The kernel's behaviour, through a real kernel process (driven by ProcessSandbox)."""

import datetime

import pytest

from codeact.sandbox.guest.output import _Capped
from codeact.sandbox.guest.text import truncate_middle
from codeact.sandbox.guest.values import to_wire
from codeact.sandbox.guest.wire import TAG
from codeact.sandbox.process import ProcessSandbox
from codeact.tools import tool


@tool
def get_weather(city: str, days: int = 3, *, units: str = "C") -> str:
    """Current weather for a city.

    Args:
        city: The city.
        days: How many days ahead.
        units: C or F.
    """
    return f"{city}:{days}:{units}"


@pytest.fixture(scope="module")
def sandbox():
    with ProcessSandbox(timeout=10) as sb:
        sb.start({"get_weather": get_weather})
        yield sb


# -- state and results ------------------------------------------------------------------------


def test_variables_imports_and_functions_persist(sandbox):
    sandbox.execute("import math\nradius = 2\ndef area(r):\n    return math.pi * r * r")
    run = sandbox.execute("round(area(radius), 3)")
    assert run.ok and run.result == "12.566"


def test_last_expression_is_returned_as_repr(sandbox):
    assert sandbox.execute("'a' + 'b'").result == "'ab'"
    assert sandbox.execute("x_none = None\nx_none").result is None  # None is not shown, like a notebook
    assert sandbox.execute("y_assigned = 5").result is None
    sandbox.execute("[1, 2][0]")
    assert sandbox.execute("_").result == "1"  # `_` holds the last step's value


def test_long_result_repr_is_truncated(sandbox):
    run = sandbox.execute("'z' * 100_000")
    assert len(run.result) < 21_000
    assert "characters truncated" in run.result


def test_top_level_await(sandbox):
    run = sandbox.execute(
        "import asyncio\nasync def twice(x):\n    await asyncio.sleep(0)\n    return 2 * x\nawait twice(21)"
    )
    assert run.ok and run.result == "42"


def test_classes_defined_by_the_model_can_be_pickled(sandbox):
    run = sandbox.execute(
        "import pickle\nclass Point:\n    pass\np = Point(); p.x = 3\npickle.loads(pickle.dumps(p)).x"
    )
    assert run.ok and run.result == "3"


# -- output -----------------------------------------------------------------------------------


def test_stdout_and_stderr_are_captured_at_python_and_fd_level(sandbox):
    run = sandbox.execute(
        "import os, sys\nprint('py-out')\nprint('py-err', file=sys.stderr)\nos.write(1, b'fd-out\\n')\n"
        "os.system('echo from-shell; echo shell-err >&2')"
    )
    assert run.stdout == "py-out\nfd-out\nfrom-shell\n"
    assert run.stderr == "py-err\nshell-err\n"


def test_output_of_a_step_does_not_leak_into_the_next(sandbox):
    sandbox.execute("print('first')")
    assert sandbox.execute("print('second')").stdout == "second\n"


def test_non_utf8_bytes_are_replaced_not_fatal(sandbox):
    run = sandbox.execute(
        "import os, sys\nsys.stdout.buffer.write(b'a\\xff\\xfeb\\n')\nos.write(1, b'c\\xc3')\nos.write(1, b'\\xa9d\\xff\\n')"
    )
    assert run.ok
    assert run.stdout == "a\ufffd\ufffdb\ncéd\ufffd\n"  # a split multi-byte sequence still decodes


PEAK_RSS_KB = "int([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])"


def test_fd_level_flood_is_truncated_without_growing_memory(sandbox):
    before = int(sandbox.execute(PEAK_RSS_KB).result)
    run = sandbox.execute("import os\nos.system('head -c 300000000 /dev/zero | tr \"\\\\0\" y')", timeout=60)
    assert run.ok and len(run.stdout) < 20_100
    assert "[... 299,980,000 characters truncated ...]" in run.stdout
    assert int(sandbox.execute(PEAK_RSS_KB).result) - before < 50_000  # kB: 300 MB went through
    assert sandbox.execute("1 + 1").result == "2"


def test_python_level_flood_is_truncated(sandbox):
    run = sandbox.execute("print('x' * 200_000_000, end='')\nprint('THE END')", timeout=60)
    assert run.ok
    assert len(run.stdout) < 20_100
    assert "[... 199,980,008 characters truncated ...]" in run.stdout
    assert run.stdout.startswith("x" * 100) and run.stdout.endswith("THE END\n")
    assert sandbox.execute("1 + 1").result == "2"


def test_many_small_prints_keep_head_and_tail(sandbox):
    run = sandbox.execute("for i in range(200_000):\n    print(i)", timeout=60)
    assert run.stdout.startswith("0\n1\n2\n")
    assert run.stdout.endswith("199998\n199999\n")
    assert "characters truncated" in run.stdout


# -- errors -----------------------------------------------------------------------------------


def test_exception_traceback_shows_only_the_action(sandbox):
    run = sandbox.execute("def boom():\n    raise ValueError('nope')\n\nboom()")
    assert run.error.type == "ValueError" and run.error.message == "nope"
    assert 'File "<step' in run.error.traceback and "line 4" in run.error.traceback
    assert "kernel.py" not in run.error.traceback
    assert "raise ValueError('nope')" in run.error.traceback  # source lines come from linecache


def test_syntax_error_has_line_information(sandbox):
    run = sandbox.execute("x = 1\ny = = 2")
    assert run.error.type == "SyntaxError"
    assert "line 2" in run.error.message
    assert "y = = 2" in run.error.traceback and "kernel.py" not in run.error.traceback


def test_sys_exit_is_reported_and_the_kernel_survives(sandbox):
    sandbox.execute("survivor = 1")
    run = sandbox.execute("import sys\nsys.exit(3)")
    assert run.error.type == "SystemExit" and not run.state_lost
    assert sandbox.execute("survivor").result == "1"


def test_memory_error_keeps_the_kernel(sandbox):
    sandbox.execute("kept = 'yes'")
    run = sandbox.execute("bytearray(10**13)")
    assert run.error.type == "MemoryError" and not run.state_lost
    assert sandbox.execute("kept").result == "'yes'"


# -- final_answer -----------------------------------------------------------------------------


def test_final_answer_stops_the_action(sandbox):
    run = sandbox.execute(
        "print('before')\nfinal_answer({'city': 'Rome', 'temps': (20, 21)})\nprint('after')"
    )
    assert run.is_final and run.error is None
    assert run.final_answer == {"city": "Rome", "temps": (20, 21)}
    assert run.stdout == "before\n"


def test_final_answer_passes_through_except_exception(sandbox):
    run = sandbox.execute(
        "try:\n    final_answer(7)\nexcept Exception:\n    print('swallowed')\nprint('after')"
    )
    assert run.is_final and run.final_answer == 7 and run.stdout == ""


def test_overwritten_final_answer_and_tools_are_restored_next_step(sandbox):
    run = sandbox.execute("def final_answer(x):\n    print('fake', x)\nget_weather = None\nfinal_answer(1)")
    assert not run.is_final and run.stdout == "fake 1\n"
    run = sandbox.execute("final_answer(get_weather('Oslo'))")
    assert run.is_final and run.final_answer == "Oslo:3:C"


def test_final_answers_of_the_safe_types_arrive_as_themselves_others_as_their_repr(sandbox):
    run = sandbox.execute("import datetime\nfinal_answer(datetime.date(2024, 5, 1))")
    assert run.is_final and run.final_answer == datetime.date(2024, 5, 1)
    run = sandbox.execute("import fractions\nfinal_answer(fractions.Fraction(1, 3))")
    assert run.final_answer.type_name == "fractions.Fraction"
    assert str(run.final_answer) == "Fraction(1, 3)"


# -- tool stubs -------------------------------------------------------------------------------


def test_stub_has_the_real_signature_and_docstring(sandbox):
    run = sandbox.execute("import inspect\nstr(inspect.signature(get_weather))")
    assert run.result == repr("(city: str, days: int = 3, *, units: str = 'C') -> str")
    help_text = sandbox.execute("help(get_weather)").stdout
    assert "get_weather(city: str, days: int = 3, *, units: str = 'C') -> str" in help_text
    assert "Current weather for a city." in help_text and "days: How many days ahead." in help_text


def test_stub_binds_arguments_like_a_function(sandbox):
    assert sandbox.execute("get_weather('Rome', 5, units='F')").result == "'Rome:5:F'"
    assert sandbox.execute("get_weather(city='Rome')").result == "'Rome:3:C'"
    run = sandbox.execute("get_weather()")
    assert run.error.type == "TypeError" and "city" in run.error.message
    run = sandbox.execute("get_weather('Rome', 1, 'F')")
    assert run.error.type == "TypeError" and "positional" in run.error.message


def test_stub_with_unusual_annotations_and_defaults():
    class Opaque:
        def __repr__(self):
            return "<Opaque thing>"

    sentinel = Opaque()

    def lookup(key: "UnknownType", /, fallback: object = sentinel, *extra: int, **options: str) -> "Mystery":  # noqa: F821
        """Look something up."""
        return [key, fallback is sentinel, list(extra), options]

    with ProcessSandbox(timeout=10) as sb:
        sb.start({"lookup": tool(lookup)})
        shown = sb.execute("import inspect\n'lookup' + str(inspect.signature(lookup))").result
        assert shown == repr(tool(lookup).python_signature())  # the model sees what the host declares
        assert "fallback: object = ..., *extra: int" in shown  # not a literal in the source: not shown
        assert sb.execute("lookup('k')").result == "['k', True, [], {}]"
        assert sb.execute("lookup('k', 1, 2, 3, mode='x')").result == "['k', False, [2, 3], {'mode': 'x'}]"


# -- units: values and truncation -------------------------------------------------------------


def test_to_wire_tags_what_json_cannot_say():
    assert to_wire({"a": [1, 2.5, None, True]}) == {"a": [1, 2.5, None, True]}
    assert to_wire((1, 2)) == {TAG: "tuple", "items": [1, 2]}
    assert to_wire({1: "x"}) == {TAG: "dict", "items": [[1, "x"]]}
    assert to_wire(b"\x00\xff") == {TAG: "bytes", "base64": "AP8="}
    assert to_wire({TAG: "fake"}) == {TAG: "dict", "items": [[TAG, "fake"]]}  # a user dict is never a tag
    opaque = to_wire(object())
    assert opaque[TAG] == "repr" and opaque["type"] == "builtins.object"
    loop: list = []
    loop.append(loop)
    assert to_wire(loop)  # a cycle ends in a repr instead of recursing forever


def test_truncate_middle_keeps_head_and_tail():
    assert truncate_middle("abc", 10) == "abc"
    text = truncate_middle("a" * 50 + "b" * 50, 10)
    assert text == "aaaaa\n[... 90 characters truncated ...]\nbbbbb"


def test_capped_buffer_matches_truncate_middle_however_text_arrives():
    text = "".join(f"line {i}\n" for i in range(5000))
    capped = _Capped(1000)
    for i in range(0, len(text), 7):
        capped.add(text[i : i + 7])
    assert capped.text() == truncate_middle(text, 1000)
    one_piece = _Capped(1000)
    one_piece.add(text)
    assert one_piece.text() == truncate_middle(text, 1000)


# -- what the kernel reports and enforces (issues 8 and 9) ------------------------------------


def test_a_flood_of_output_reports_its_real_size(sandbox):
    run = sandbox.execute("print('x' * 50_000_000)")
    assert run.output_dropped == 49_980_001  # what the sandbox's cap dropped, counted in the kernel
    assert "[... 49,980,001 characters truncated ...]" in run.stdout


def test_authorized_imports_are_enforced_inside_the_kernel():
    with ProcessSandbox(timeout=10) as sb:
        sb.start({})
        sb.set_authorized_imports(["math", "importlib", "collections"])
        attempts = {
            "statement": "import os",
            "from": "from os import path",
            "dunder": "__import__('os')",
            "importlib": "import importlib\nimportlib.import_module('socket')",
            "exec": "exec('import subprocess')",
            "submodule": "import os.path",
        }
        for label, code in attempts.items():
            run = sb.execute(code)
            assert run.error is not None and run.error.type == "ImportError", label
            assert "Allowed modules: collections, importlib, math (authorized_imports)" in run.error.message
        assert sb.execute("import math, collections.abc\nmath.floor(2.5)").result == "2"
        assert sb.execute("import json\njson.dumps([1])").error.type == "ImportError"
        # an allowed module's own imports are not the model's: `collections` imports more underneath
        sb.set_authorized_imports(None)
        assert sb.execute("import os\nos.sep").result == "'/'"


def test_a_thread_from_an_earlier_run_cannot_call_the_next_runs_tools():
    with ProcessSandbox(timeout=10) as sb:
        sb.start({"get_weather": get_weather})
        sb.execute(
            "import threading, time\nseen = []\ngo = threading.Event()\n"
            "def worker():\n    go.wait()\n    try:\n        seen.append(get_weather('Rome'))\n"
            "    except Exception as e:\n        seen.append(repr(e))\n"
            "t = threading.Thread(target=worker)\nt.start()"
        )
        sb.start({"get_weather": get_weather})  # a new run: same kernel, same state
        run = sb.execute("go.set()\nt.join(5)\nseen")
        assert "RuntimeError(\"get_weather(): this thread was started by an earlier run" in run.result
        assert run.tool_calls == ()
        pool = sb.execute(
            "from concurrent.futures import ThreadPoolExecutor\npool = ThreadPoolExecutor(2)\n"
            "list(pool.map(get_weather, ['a', 'b']))"
        )
        assert pool.ok and len(pool.tool_calls) == 2
        assert sb.execute("list(pool.map(get_weather, ['c']))").ok  # a pool lives on through the run's steps
