"""A final answer as text for the terminal and as data for `--json`.

An answer is whatever the model passed to `final_answer`: JSON data, a value the bridge rebuilt
(a set, a tuple, bytes, a datetime or a Decimal, as real objects) or an `OpaqueValue` (the
kernel's type name and repr, for anything else). A Python user expects to read the value the
way Python prints it, and a script expects JSON it can parse, so:

- on the terminal a string prints as itself, a value JSON carries exactly (numbers, booleans,
  None, lists and str-keyed dicts of them) as JSON, and anything else as its repr
  (`{1, 2}`, `datetime.date(2024, 1, 31)`, `Decimal('1.10')`);
- in `--json` JSON-exact values are themselves, and any other value is an object
  `{"type": "set", "repr": "{1, 2}", "value": [1, 2]}`, where `value` is a JSON form when one is
  natural (sets, frozensets and tuples as lists, dates as ISO 8601, Decimal as a string, bytes as
  text when they are UTF-8) and is left out otherwise (opaque values).
"""

from __future__ import annotations

import datetime
import decimal
import json
from typing import Any

__all__ = ["answer_json", "answer_text"]

_MAX_DEPTH = 100


def answer_text(output: Any) -> str:
    """The answer as a Python user reads it (before `visible()` makes it safe to print)."""
    if isinstance(output, str):
        return output
    if _json_exact(output):
        return json.dumps(output, ensure_ascii=False)
    return _repr(output)


def answer_json(value: Any, _depth: int = 0) -> Any:
    """JSON-ready data: JSON-exact values as they are, others as {"type", "repr", "value"?}."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else _tagged(value)
    if _depth >= _MAX_DEPTH:
        return _tagged(value)
    if type(value) is list:
        return [answer_json(v, _depth + 1) for v in value]
    if type(value) is dict and all(isinstance(k, str) for k in value):
        return {k: answer_json(v, _depth + 1) for k, v in value.items()}
    return _tagged(value, _depth)


def _tagged(value: Any, depth: int = _MAX_DEPTH) -> dict[str, Any]:
    data: dict[str, Any] = {"type": _type_name(value), "repr": _repr(value)}
    natural = _natural(value, depth)
    if natural is not _NONE:
        data["value"] = natural
    return data


_NONE = object()


def _natural(value: Any, depth: int) -> Any:
    """The JSON form a reader would expect, or _NONE when there is no obvious one."""
    if isinstance(value, (set, frozenset)) and depth < _MAX_DEPTH:
        items = [answer_json(v, depth + 1) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(value, (list, tuple)) and depth < _MAX_DEPTH:
        return [answer_json(v, depth + 1) for v in value]
    if isinstance(value, dict) and depth < _MAX_DEPTH:  # non-string keys: a list of pairs
        return [[answer_json(k, depth + 1), answer_json(v, depth + 1)] for k, v in value.items()]
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return _NONE
    return _NONE


def _type_name(value: Any) -> str:
    type_name = getattr(value, "type_name", None)  # an OpaqueValue names the kernel's type
    if isinstance(type_name, str) and type(value).__name__ == "OpaqueValue":
        return type_name
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _repr(value: Any) -> str:
    if type(value).__name__ == "OpaqueValue":
        return str(value)  # the repr the kernel made
    try:
        return repr(value)
    except Exception as exc:  # a broken __repr__ must not take the CLI down
        return f"<{_type_name(value)} (repr failed: {type(exc).__name__})>"


def _json_exact(value: Any, depth: int = 0) -> bool:
    if value is None or isinstance(value, (str, bool, int)):
        return True
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    if depth >= _MAX_DEPTH:
        return False
    if type(value) is list:
        return all(_json_exact(v, depth + 1) for v in value)
    if type(value) is dict:
        return all(isinstance(k, str) and _json_exact(v, depth + 1) for k, v in value.items())
    return False
