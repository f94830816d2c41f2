"""Deciding whether an agent's answer matches the expected one.

A checker is `check(output, expected) -> bool`. Agents return all kinds of values (an int, "18",
"$18.00", "The answer is 18."), so each checker first reduces both sides to a comparable form and
only then compares. A task set names its checker per task: a key of `CHECKERS` or, for its own,
`module:function`.
"""

from __future__ import annotations

import ast
import json
import math
import re
import string
import unicodedata
from collections.abc import Callable, Iterable
from decimal import Decimal
from fractions import Fraction
from typing import Any

from codeact.errors import ConfigError

__all__ = [
    "CHECKERS",
    "Checker",
    "exact",
    "get_checker",
    "last_number",
    "list_match",
    "normalize_text",
    "normalized",
    "numeric",
    "set_match",
]

Checker = Callable[[Any, Any], bool]

# A number: thousands groups or plain digits, optional decimals and exponent; or ".5".
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+]?\.\d+")
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
_PUNCTUATION = str.maketrans({c: " " for c in string.punctuation})
_SPLIT = re.compile(r"\s*(?:[,;\n]|\band\b)\s*")


def last_number(value: Any) -> float | None:
    """The value as a number: itself if numeric, else the last number written in its text."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, Decimal, Fraction)):
        return float(value)
    text = value if isinstance(value, str) else _text(value)
    matches = _NUMBER.findall(text)
    if not matches:
        return None
    try:
        return float(matches[-1].replace(",", ""))
    except ValueError:  # pragma: no cover - the pattern only matches parseable numbers
        return None


def numeric(output: Any, expected: Any, *, rel_tol: float = 1e-4) -> bool:
    """The last number in the answer equals the expected number within a relative 1e-4."""
    got, want = last_number(output), last_number(expected)
    if got is None or want is None:
        return False
    return math.isclose(got, want, rel_tol=rel_tol, abs_tol=1e-9)


def exact(output: Any, expected: Any) -> bool:
    """Equal values, or equal text after stripping surrounding whitespace."""
    if output == expected and type(output) is type(expected):
        return True
    return _text(output).strip() == _text(expected).strip()


def normalize_text(value: Any) -> str:
    """Case-folded, accents kept, punctuation and articles removed, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", _text(value)).casefold()
    text = _ARTICLES.sub(" ", text.translate(_PUNCTUATION))
    return " ".join(text.split())


def normalized(output: Any, expected: Any) -> bool:
    """Equal after `normalize_text`: "The Austin warehouse." does not match "austin", "Austin!" does."""
    return normalize_text(output) == normalize_text(expected)


def set_match(output: Any, expected: Any) -> bool:
    """The same items in any order (normalized; numbers compared as numbers)."""
    got, want = _items(output), _items(expected)
    return got is not None and want is not None and sorted(got) == sorted(want)


def list_match(output: Any, expected: Any) -> bool:
    """The same items in the same order (normalized; numbers compared as numbers)."""
    got, want = _items(output), _items(expected)
    return got is not None and want is not None and got == want


CHECKERS: dict[str, Checker] = {
    "exact": exact,
    "numeric": numeric,
    "normalized": normalized,
    "set": set_match,
    "list": list_match,
}


def get_checker(name: str) -> Checker:
    """A checker by name (`CHECKERS`) or by import path `module:function`."""
    if name in CHECKERS:
        return CHECKERS[name]
    if ":" in name:
        from codeact._loading import load_object

        checker = load_object(name, "checker")
        if not callable(checker):
            raise ConfigError(f"checker {name!r} is a {type(checker).__name__}, not a function")
        return checker  # type: ignore[no-any-return]
    known = ", ".join(CHECKERS)
    raise ConfigError(f"unknown checker {name!r}; use one of {known}, or module:function")


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def _items(value: Any) -> list[str] | None:
    """A collection as canonical item strings: a list/tuple/set, or text holding one."""
    if isinstance(value, str):
        parsed = _parse_collection(value)
        raw: Iterable[Any] = parsed if parsed is not None else [p for p in _SPLIT.split(value.strip()) if p]
    elif isinstance(value, (list, tuple, set, frozenset)):
        raw = value
    elif isinstance(value, dict):
        raw = value.keys()
    else:
        return None
    return [_canonical(item) for item in raw]


def _parse_collection(text: str) -> list[Any] | None:
    stripped = text.strip()
    if not stripped.startswith(("[", "(", "{")):
        return None
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(stripped)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(value, (list, tuple, set, frozenset)):
            return list(value)
    return None


def _canonical(item: Any) -> str:
    number = None if isinstance(item, str) and not _NUMBER.fullmatch(item.strip()) else last_number(item)
    if number is not None and not isinstance(item, (list, dict)):
        return repr(round(number, 9))
    return normalize_text(item)
