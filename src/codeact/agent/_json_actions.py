"""Reading tool calls that a model wrote as JSON in plain text.

Models without a native tool-calling API (or servers that only render the tools into the prompt,
like llama.cpp's) answer with text. Small models wrap the JSON many ways: a ```json fence, Qwen's
`<tool_call>` tags, a bare object after a thought, a list of calls, Python-style single quotes,
`{"tool": ..., "args": ...}` instead of `{"name": ..., "arguments": ...}`. Each of those becoming a
wasted step would measure the parser instead of the model, so this accepts every reasonable shape
and, when nothing fits, returns a message that tells the model exactly what to write. It never
raises, and it scans the text once (no backtracking regexes).

What a Python literal may hold but JSON cannot is made JSON here, once, with a note: a set or a
tuple becomes a list, a non-string key its repr; bytes, complex numbers and `...` are refused
with a message. The arguments go back to the model API in the next request, and a value that
cannot be serialised there would end the run instead of becoming an observation.
"""

from __future__ import annotations

import ast
import itertools
import json
from dataclasses import dataclass
from typing import Any

from codeact.models.base import ToolCall

__all__ = ["ParseFailure", "ParsedCalls", "parse_tool_calls"]

_NAME_KEYS = ("name", "tool", "tool_name", "function", "action", "function_name")
_ARG_KEYS = ("arguments", "args", "parameters", "params", "input", "action_input", "tool_input", "kwargs")
_LIST_KEYS = ("tool_calls", "calls", "actions")
_MAX_SPANS = 32
_ids = itertools.count(1)


@dataclass(frozen=True)
class ParsedCalls:
    """Tool calls found in a reply, in order, with the prose before the first one."""

    calls: tuple[ToolCall, ...]
    thought: str
    repaired: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParseFailure:
    """No usable call; `message` goes back to the model as the observation."""

    message: str


EXAMPLE = '{"name": "final_answer", "arguments": {"answer": 42}}'


def parse_tool_calls(text: str) -> ParsedCalls | ParseFailure:
    """Find the JSON tool calls in a model reply; never raises."""
    spans, unclosed = _scan(text)
    repaired: list[str] = []
    if not spans and unclosed is not None:
        start, closers = unclosed
        body = _strip_fence_tail(text[start:])
        value, _, error = _decode(body + closers)
        if error is not None:
            return ParseFailure(
                f"Your JSON is not complete: {error}. "
                f"Write each tool call as one complete JSON object, e.g. {EXAMPLE}"
            )
        found, problem = _calls_in(value)
        if not found:
            return ParseFailure(f"Could not read a tool call from your reply: {problem}. Write e.g. {EXAMPLE}")
        return ParsedCalls(tuple(found), _thought(text[:start]), (f"added missing {closers!r}",))
    if not spans:
        return ParseFailure(
            f"No tool call found. Reply with a short thought, then a JSON object such as {EXAMPLE}"
        )
    calls: list[ToolCall] = []
    errors: list[str] = []
    for start, end in spans:
        value, note, error = _decode(text[start:end])
        if error is not None:
            errors.append(error)
            continue
        if note:
            repaired.append(note)
        found, problem = _calls_in(value)
        if problem:
            errors.append(problem)
        calls.extend(found)
    if not calls:
        detail = errors[0] if errors else "no object named a tool"
        return ParseFailure(
            f"Could not read a tool call from your reply: {detail}. "
            f'Write {{"name": <tool name>, "arguments": {{...}}}} as valid JSON, e.g. {EXAMPLE}'
        )
    return ParsedCalls(tuple(calls), _thought(text[: spans[0][0]]), tuple(dict.fromkeys(repaired)))


def _strip_fence_tail(body: str) -> str:
    """Drop a closing fence or tag after an unclosed object, so closers go where they belong."""
    body = body.rstrip()
    for tail in ("```", "</tool_call>"):
        body = body.removesuffix(tail).rstrip()
    return body


def _thought(prefix: str) -> str:
    """The prose before the first call, without a dangling fence opener or tag."""
    lines = prefix.rstrip().splitlines()
    while lines and (lines[-1].strip().startswith("```") or lines[-1].strip() in ("<tool_call>", "Action:")):
        lines.pop()
    return "\n".join(lines).strip()


def _scan(text: str) -> tuple[list[tuple[int, int]], tuple[int, str] | None]:
    """Balanced top-level {...} / [...] spans in `text`, in one pass, plus an unclosed tail.

    Quotes are tracked only inside brackets, so apostrophes in the prose around the JSON
    cannot throw the scan off. A `[` counts only if it could open a list of calls, which keeps
    prose like "[1] first" from hiding the object after it. The tail is (start, the closers it
    lacks), for the common small-model slip of stopping before the last brace.
    """
    spans: list[tuple[int, int]] = []
    stack: list[str] = []
    start = 0
    quote = ""
    escaped = False
    for i, ch in enumerate(text):
        if not stack:
            if ch == "{" or (ch == "[" and text[i + 1 : i + 40].lstrip().startswith("{")):
                stack, start, quote = [ch], i, ""
            continue
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote or (ch == "\n" and quote == "'"):
                quote = ""
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "{[":
            stack.append(ch)
        elif ch in "}]":
            stack.pop()
            if not stack:
                spans.append((start, i + 1))
                if len(spans) >= _MAX_SPANS:
                    return spans, None
    if not stack:
        return spans, None
    closers = "".join("}" if ch == "{" else "]" for ch in reversed(stack))
    return spans, (start, (quote or "") + closers)


def _decode(snippet: str) -> tuple[Any, str, str | None]:
    """(value, repair note, error): JSON first, then a Python literal (single quotes, True/None)."""
    try:
        return json.loads(snippet), "", None
    except ValueError as exc:
        json_error = f"invalid JSON ({exc})"
    lowered = snippet.replace("true", "True").replace("false", "False").replace("null", "None")
    for source in (snippet, lowered):
        try:
            value = ast.literal_eval(source)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        notes: list[str] = []
        try:
            value = _as_json(value, notes, 0)
        except ValueError as exc:
            return None, "", f"{exc}; write JSON values (strings, numbers, lists, objects)"
        return value, "; ".join(["read a Python literal instead of JSON", *dict.fromkeys(notes)]), None
    return None, "", json_error


_MAX_DEPTH = 100


def _as_json(value: Any, notes: list[str], depth: int) -> Any:
    """A Python literal's value in JSON's types; ValueError for what has no JSON form."""
    if depth > _MAX_DEPTH:
        raise ValueError("the value is nested too deeply")
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                notes.append("turned non-string keys into strings")
                key = key if isinstance(key, (int, float, bool)) or key is None else repr(key)
                key = json.dumps(key) if not isinstance(key, str) else key
            out[key] = _as_json(item, notes, depth + 1)
        return out
    if isinstance(value, (set, frozenset)):
        notes.append("turned a set into a list")
        return [_as_json(v, notes, depth + 1) for v in sorted(value, key=repr)]
    if isinstance(value, (list, tuple)):
        if isinstance(value, tuple):
            notes.append("turned a tuple into a list")
        return [_as_json(v, notes, depth + 1) for v in value]
    raise ValueError(f"{type(value).__name__} {repr(value)[:60]} has no JSON form")


def _calls_in(value: Any) -> tuple[list[ToolCall], str | None]:
    """Tool calls in a decoded value: one call, a list of calls, or {"tool_calls": [...]}."""
    if isinstance(value, list):
        calls: list[ToolCall] = []
        problem = None
        for item in value:
            found, issue = _calls_in(item)
            calls.extend(found)
            problem = problem or issue
        return calls, problem
    if not isinstance(value, dict):
        return [], f"expected a JSON object, got {type(value).__name__}"
    for key in _LIST_KEYS:
        if isinstance(value.get(key), list):
            return _calls_in(value[key])
    call = _one_call(value)
    if isinstance(call, str):
        return [], call
    return [call], None


def _one_call(obj: dict[Any, Any]) -> ToolCall | str:
    name: Any = None
    for key in _NAME_KEYS:
        if key in obj:
            name = obj[key]
            break
    if isinstance(name, dict):  # OpenAI shape: {"function": {"name": ..., "arguments": ...}}
        return _one_call({**name, "id": obj.get("id")})
    if not isinstance(name, str) or not name.strip():
        keys = ", ".join(repr(k) for k in obj) or "none"
        return f'the object has no "name" naming the tool (keys: {keys})'
    arguments: Any = {}
    for key in _ARG_KEYS:
        if key in obj:
            arguments = obj[key]
            break
    else:
        rest = {k: v for k, v in obj.items() if k not in (*_NAME_KEYS, "id", "type")}
        arguments = rest
    if isinstance(arguments, str):
        arguments = _string_arguments(arguments)
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        arguments = {"__args__": arguments if isinstance(arguments, list) else [arguments]}
    given = obj.get("id")
    call_id = given if isinstance(given, str) and given else f"call_{next(_ids)}"
    return ToolCall(call_id, name.strip(), arguments)


def _string_arguments(raw: str) -> Any:
    """Arguments given as a JSON string (the OpenAI wire format) or as one bare value."""
    stripped = raw.strip()
    if stripped.startswith(("{", "[")):
        try:
            return json.loads(stripped)
        except ValueError:
            pass
    return [raw]
