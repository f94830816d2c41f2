"""`_text`: untrusted text shown as the characters it is; `_answer`: answers as Python prints them."""

import datetime
import decimal
import io
import json

import pytest
from rich.console import Console

from codeact.cli._answer import answer_json, answer_text
from codeact.cli._text import json_line, safe, visible
from codeact.sandbox._codec import OpaqueValue

MARKUP = ["Find all words matching [a-z]+", "x[i]", "[link](http://x)", "key=[value]", "[/]",
          "[bold red]not bold[/]", "[link=http://evil]click[/link]", ":smile: stays", "\\[escaped\\]"]
CONTROLS = {
    "OSC 52 clipboard": "\x1b]52;c;cm0gLXJmIH4=\x07",
    "OSC 8 link": "\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\",
    "cursor moves": "\x1b[5A\x1b[2K\x1b[10C",
    "title set": "\x1b]0;owned\x07",
    "clear screen": "\x1b[H\x1b[2J",
    "C1 CSI": "\x9b31m",
    "bell and backspace": "ok\x07\x08\x08XX",
    "carriage return": "safe\rEVIL",
    "bidi override": "abc\u202edcba",
    "lone surrogate": "caf\udce9",
    "tag characters": "hi\U000e0041\U000e0042",
}


def render(renderable, *, terminal=False):
    buffer = io.StringIO()
    Console(file=buffer, width=120, force_terminal=terminal, color_system="truecolor" if terminal else None,
            legacy_windows=False).print(renderable)
    return buffer.getvalue()


@pytest.mark.parametrize("text", MARKUP)
def test_markup_is_shown_verbatim(text):
    assert render(safe(text)).rstrip("\n") == text


@pytest.mark.parametrize("name", CONTROLS)
def test_controls_become_visible_escapes(name):
    shown = visible(CONTROLS[name])
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or 0xD800 <= ord(c) <= 0xDFFF for c in shown)
    assert "\u202e" not in shown and "\U000e0041" not in shown
    shown.encode("utf-8")  # no lone surrogate left to fail the write
    out = render(safe(CONTROLS[name]), terminal=True)
    # Rich's own styling is SGR only; nothing of the payload is left raw.
    assert "\x1b]" not in out and "\x9b" not in out and "\x07" not in out and "\x08" not in out


def test_escapes_read_like_python():
    assert visible("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert visible("\x9b") == "\\x9b"
    assert visible("\u202e") == "\\u202e"
    assert visible("caf\udce9") == "caf\\udce9"
    assert visible("\U000e0041") == "\\U000e0041"
    assert visible("tab\tand\nnewline\r\n") == "tab\tand\nnewline\n"
    assert visible("über ☃ 日本 👍") == "über ☃ 日本 👍"


def test_json_line_is_exact_and_has_no_raw_control():
    data = {"answer": "".join(CONTROLS.values()) + "über", "n": [1, None]}
    line = json_line(data)
    assert json.loads(line) == data
    assert all(not (ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or 0xD800 <= ord(c) <= 0xDFFF) for c in line)
    assert "\u202e" not in line and "über" in line
    line.encode("utf-8")


@pytest.mark.parametrize(("value", "text"), [
    ("plain", "plain"),
    (42, "42"),
    ([1, "a", None, True], '[1, "a", null, true]'),
    ({"a": 1.5}, '{"a": 1.5}'),
    ({1, 2}, "{1, 2}"),
    ((1, "a"), "(1, 'a')"),
    (datetime.date(2024, 1, 31), "datetime.date(2024, 1, 31)"),
    (decimal.Decimal("1.10"), "Decimal('1.10')"),
    (b"\x00ab", "b'\\x00ab'"),
    (OpaqueValue("datetime.date", "datetime.date(2024, 1, 31)"), "datetime.date(2024, 1, 31)"),
    (OpaqueValue("Frame", "<Frame [3 rows]>"), "<Frame [3 rows]>"),
])
def test_answer_text_is_what_python_prints(value, text):
    assert answer_text(value) == text


def test_answer_json_has_a_documented_shape():
    assert answer_json({"a": [1, "x", None]}) == {"a": [1, "x", None]}
    assert answer_json({3, 1, 2}) == {"type": "set", "repr": "{1, 2, 3}", "value": [1, 2, 3]}
    assert answer_json((1, "a")) == {"type": "tuple", "repr": "(1, 'a')", "value": [1, "a"]}
    assert answer_json(datetime.date(2024, 1, 31)) == {
        "type": "datetime.date", "repr": "datetime.date(2024, 1, 31)", "value": "2024-01-31"}
    assert answer_json(decimal.Decimal("1.10")) == {
        "type": "decimal.Decimal", "repr": "Decimal('1.10')", "value": "1.10"}
    assert answer_json(OpaqueValue("pandas.DataFrame", "   a\n0  1")) == {
        "type": "pandas.DataFrame", "repr": "   a\n0  1"}
    assert answer_json({1: "x"}) == {"type": "dict", "repr": "{1: 'x'}", "value": [[1, "x"]]}
    assert answer_json([{1, 2}]) == [{"type": "set", "repr": "{1, 2}", "value": [1, 2]}]
    assert answer_json(float("nan"))["type"] == "float"
    json.dumps(answer_json([{1, 2}, (3,), b"x", float("inf")]), allow_nan=False)


def test_answer_json_of_deep_nesting_is_bounded():
    value: list = []
    for _ in range(5_000):
        value = [value]
    json.dumps(answer_json(value))  # no RecursionError
    assert isinstance(answer_text(value), str)  # repr itself may give up; the CLI does not crash
