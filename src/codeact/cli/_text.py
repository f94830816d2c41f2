"""Showing text that is not ours: it is data, never Rich markup and never terminal control.

Tasks, model output, code, observations, tool arguments and results, answers, exception
messages, run ids and model names all come from the user, the model, the sandbox or the run
log. Printed as a Rich markup string, `[/]` crashes the view and `[a-z]` disappears; written
raw, `ESC ] 52` sets the clipboard, `ESC ] 8` hides a link and CSI moves the cursor. So every
such string goes through `visible()` (control characters become `\\x1b`-style escapes, newlines
and tabs stay) and reaches Rich as a `Text` (`safe()`), which Rich never parses as markup.
JSON on stdout goes through `json_line()`, which keeps every character but writes the
dangerous ones as `\\u` escapes, so it stays exact and still carries no raw control.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rich.text import Text

__all__ = ["json_line", "safe", "visible"]

# C0 controls but tab and newline, DEL, C1 controls (U+009B is a one-byte CSI), the bidi
# controls that reorder what is shown (U+202E "RIGHT-TO-LEFT OVERRIDE"), line and paragraph
# separators, the byte-order mark, invisible Unicode tag characters (hidden-text smuggling),
# and surrogates, which only occur unpaired in a str and cannot be encoded at all.
_BEYOND_C0 = (
    "\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
    "\ufeff\ud800-\udfff\U000e0000-\U000e007f"
)
_UNSAFE_RE = re.compile(f"[\x00-\x08\x0b-\x1f{_BEYOND_C0}]")
# In JSON text json.dumps already escapes the C0 controls; the rest it writes raw.
_JSON_UNSAFE_RE = re.compile(f"[{_BEYOND_C0}]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def visible(text: object) -> str:
    """`text` (str() of it if it is not a str) with every control character shown as an escape.

    Newlines and tabs are kept; a CR-LF pair becomes a newline; a lone CR, ESC, BEL, backspace,
    C1 controls, bidi overrides and lone surrogates become escapes such as `\\r`, `\\x1b`,
    `\\x9b`, `\\u202e`, `\\ud800`. The result encodes as UTF-8 and moves no cursor.
    """
    string = text if isinstance(text, str) else str(text)
    if "\r\n" in string:
        string = string.replace("\r\n", "\n")
    return _UNSAFE_RE.sub(_escape, string)


def safe(text: object, style: str = "", **kwargs: Any) -> Text:
    """A Rich `Text` of `visible(text)`: shown character for character, never parsed as markup."""
    return Text(visible(text), style=style, **kwargs)


def _json_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000  # JSON writes astral characters as a surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def json_line(data: Any, **kwargs: Any) -> str:
    """`json.dumps(data)` that keeps non-ASCII text readable but has no raw control character.

    Lossless: `json.loads` gives back the same strings, lone surrogates included. Such
    characters can only stand inside JSON strings, where a `\\uXXXX` escape means the same.
    """
    return _JSON_UNSAFE_RE.sub(_json_escape, json.dumps(data, ensure_ascii=False, **kwargs))
