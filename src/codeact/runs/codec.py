"""Events to JSON and back, so a run read from the log is the run that happened.

`encode_event` writes the event's structure as plain JSON. The values that come from user code
(tool arguments and results, final answers) go through `encode_value`, which keeps their types:
tuples, sets, bytes and dicts with non-string keys are tagged, and other objects are kept as a
pickle next to their repr, so replay can hand a tool's recorded result back exactly as the tool
returned it. `event_from_dict` rebuilds the typed event; unknown kinds raise ConfigError (a log
written by a newer codeact), and missing optional fields take their defaults.

Images (in messages and in an action's execution) are kept whole while their base64 fits
`_IMAGE_CHARS` times the log's `value_chars` (1,000,000 characters by default, 10x less past a
step's or the run's cap); larger ones are kept as what they are (type, size) and are left out
of the messages and executions read back.

Pickles are only read back from logs you open yourself (`allow_pickle`); a log from elsewhere
is as trusted as code from there.
"""

from __future__ import annotations

import base64
import dataclasses
import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from codeact.errors import ConfigError
from codeact.models.base import Message, ToolCall, Usage
from codeact.models.images import Image, ImageLimits, check_image
from codeact.runs.events import (
    ActionParsed,
    ApprovalDecided,
    ApprovalRequested,
    BudgetHit,
    Event,
    FilesChanged,
    ImagesShown,
    LogNote,
    ModelReplied,
    ModelRequested,
    Observed,
    PlanUpdated,
    RunFinished,
    RunResumed,
    RunStarted,
    Step,
    StepFinished,
    ToolCalled,
)
from codeact.runs.limits import TAG, Bounded, LogLimits, Truncated, _Walk, cut_text
from codeact.runs.result import FileChange
from codeact.sandbox.base import ExecError, Execution, ToolCallRecord

__all__ = [
    "TAG",
    "RecordedObject",
    "Truncated",
    "decode_execution",
    "decode_tool_call",
    "decode_value",
    "encode_event",
    "encode_value",
    "event_from_dict",
]

_MAX_PICKLE = 1_000_000
_DEFAULT = Bounded(LogLimits())


@dataclass(frozen=True)
class RecordedObject:
    """A value the log could only keep as its repr (no pickle, or pickles not allowed), and the
    fields a record type (dataclass, pydantic model) shows, so replay can stand in for it."""

    type: str
    repr: str
    fields: dict[str, Any] | None = field(default=None, compare=False)

    def __repr__(self) -> str:
        return self.repr


def encode_value(value: Any, bound: Bounded | None = None) -> Any:
    """JSON for a user value, with tags where plain JSON would change its type.

    At most `bound`'s limits are kept (`LogLimits()` by default): deeper or larger parts become
    `truncated` tags, so encoding costs time linear in what is kept and never overflows the stack.
    """
    return _value(value, (bound or _DEFAULT).walker(), 0)


def _value(value: Any, walk: _Walk, depth: int) -> Any:
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        return walk.scalar(value)
    if kind is Truncated:
        walk.spend(len(value.preview) + 80)
        return dict(value.data) or walk.truncated(value.type, value.size, value.preview)
    if walk.too_deep(depth):
        return walk.deep(value)
    if kind is bytes:
        return walk.bytes_(value)
    if kind is list:
        return _items(value, "list", walk, depth, lambda items: items)
    if kind is dict and all(type(k) is str for k in value) and TAG not in value:
        return _items(list(value.items()), "dict", walk, depth, dict, pairs=True)
    if kind in (tuple, set, frozenset):
        items = list(value) if kind is tuple else _sorted(value, walk)
        return _items(items, kind.__name__, walk, depth, lambda kept: {TAG: kind.__name__, "items": kept})
    if kind is dict:
        pairs = [[k, v] for k, v in value.items()]
        return _items(pairs, "dict", walk, depth, lambda kept: {TAG: "dict", "items": kept}, tagged_pairs=True)
    return _encode_object(value, walk)


def _items(items: list[Any], name: str, walk: _Walk, depth: int, make: Callable[[Any], Any],
           *, pairs: bool = False, tagged_pairs: bool = False) -> Any:
    """Encode elements while the budget lasts; a container cut short becomes a `truncated` tag.

    A nested container stops at half the budget it found, so one wide part does not starve
    its siblings and turn every container around it into a preview too."""
    kept: list[Any] = []
    floor = walk.left // 2 if depth > 0 else 0
    for item in items:
        if walk.left - 2 < floor or not walk.spend(2):
            out = walk.truncated(name, len(items), f"the first {len(kept):,} of {len(items):,} items")
            out["items"] = kept if not pairs else [[k, v] for k, v in kept]
            return out
        if pairs:
            key, val = item
            walk.spend(len(key))
            kept.append((key if len(key) <= 1_000 else key[:1_000] + "…", _value(val, walk, depth + 1)))
        elif tagged_pairs:
            kept.append([_value(item[0], walk, depth + 1), _value(item[1], walk, depth + 1)])
        else:
            kept.append(_value(item, walk, depth + 1))
    return make(dict(kept) if pairs else kept)


def _sorted(value: set[Any] | frozenset[Any], walk: _Walk) -> list[Any]:
    """A set's elements in a stable order (by repr) when it is small enough to sort."""
    if len(value) * 2 > walk.left:
        return list(value)
    try:
        return sorted(value, key=repr)
    except Exception:  # noqa: BLE001 - a repr that fails or recurses: keep the set's own order
        return list(value)


def decode_value(data: Any, *, allow_pickle: bool = True) -> Any:
    """The value `encode_value` encoded (a RecordedObject where only its repr is known, a
    Truncated where the log kept only part of it)."""
    if isinstance(data, list):
        return [decode_value(v, allow_pickle=allow_pickle) for v in data]
    if not isinstance(data, dict):
        return data
    tag = data.get(TAG)
    if tag is None:
        return {k: decode_value(v, allow_pickle=allow_pickle) for k, v in data.items()}
    if tag == "truncated":
        return Truncated(str(data.get("type", "value")), int(data.get("size") or 0), str(data.get("preview", "")),
                         dict(data))
    items = [decode_value(v, allow_pickle=allow_pickle) for v in data.get("items", ())]
    if tag == "tuple":
        return tuple(items)
    if tag in ("set", "frozenset"):
        return {"set": set, "frozenset": frozenset}[tag](_hashable(v) for v in items)
    if tag == "dict":
        return {_hashable(k): v for k, v in items}
    if tag == "bytes":
        return base64.b64decode(data.get("base64", ""))
    if tag == "object":
        fields = data.get("fields")
        recorded = RecordedObject(
            str(data.get("type", "object")), str(data.get("repr", "")),
            {str(k): decode_value(v, allow_pickle=False) for k, v in fields.items()} if isinstance(fields, dict) else None,
        )
        if allow_pickle and data.get("pickle"):
            try:
                return pickle.loads(base64.b64decode(data["pickle"]))  # see the module docstring
            except Exception:  # noqa: BLE001 - a class that no longer imports: fall back to the repr
                return recorded
        return recorded
    return {k: decode_value(v, allow_pickle=allow_pickle) for k, v in data.items()}


def encode_event(event: Event, bound: Bounded | None = None) -> dict[str, Any]:
    """The event as JSON-ready data with a `kind` tag; user values keep their types.

    Texts and values are kept up to `bound`'s limits (`LogLimits()` by default)."""
    bound = bound or _DEFAULT
    data: dict[str, Any] = {"kind": event.kind}
    for f in dataclasses.fields(event):
        if f.name == "result":  # RunFinished.result duplicates the rest of the run
            continue
        if f.name == "images" and isinstance(event, ImagesShown):  # kept in the Observed event
            continue
        value = getattr(event, f.name)
        slot = f.name == "output" or (type(event), f.name) in _VALUE_SLOTS
        data[f.name] = encode_value(value, bound) if slot else _struct(value, bound, 0)
    return data


def _struct(value: Any, bound: Bounded, depth: int, walk: _Walk | None = None) -> Any:
    """An event's own structure: dataclass fields by name, texts cut to `text_chars`; lists and
    dicts (tool names, messages, a native tool call's arguments) share one value budget."""
    kind = type(value)
    if kind is str:
        return bound.text(value) if walk is None else walk.scalar(value)
    if value is None or kind is int or kind is float or kind is bool or isinstance(value, (str, int, float)):
        return value if walk is None else walk.scalar(value)
    if depth >= bound.limits.depth:
        return "<nested too deeply to keep in the run log>"
    if kind is Image:
        return _image(value, bound)
    names = _field_names(kind)
    if names is not None:
        out: dict[str, Any] = {}
        if isinstance(value, Execution) and kind is not Execution:
            # An agent kind's own Execution (the tool-calling agent's keeps per-call outputs):
            # resume must hand the loop the same class, or its observations would change.
            out[_TYPE] = f"{kind.__module__}:{kind.__qualname__}"
        for name in names:
            item = getattr(value, name)
            slot = (kind, name) in _VALUE_SLOTS
            out[name] = encode_value(item, bound) if slot else _struct(item, bound, depth + 1)
        return out
    if isinstance(value, (list, tuple, dict)):
        walk = walk or bound.walker()
        pairs = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
        kept: list[tuple[Any, Any]] = []
        for key, item in pairs:
            if not walk.spend(2):
                return walk.truncated(type(value).__name__, len(pairs), f"the first {len(kept):,} of {len(pairs):,}")
            kept.append((key, _struct(item, bound, depth + 1, walk)))
        if isinstance(value, dict):
            return {str(k)[:1_000]: v for k, v in kept}
        return [v for _, v in kept]
    return bound.text(_safe_repr(value))


_VALUE_SLOTS = {(ToolCallRecord, "result"), (ToolCallRecord, "arguments"), (Execution, "final_answer"),
                (ApprovalRequested, "arguments"), (ApprovalDecided, "arguments")}
_FIELDS: dict[type, tuple[str, ...] | None] = {}


_IMAGE_CHARS = 10
"""An image's base64 is kept up to this many times `LogLimits.value_chars`."""


def _image(image: Image, bound: Bounded) -> dict[str, Any]:
    data: dict[str, Any] = {"mime": image.mime, "width": image.width, "height": image.height,
                            "size": image.size, "source": image.source}
    if image.size * 4 // 3 + 4 <= bound.limits.value_chars * _IMAGE_CHARS:
        data["base64"] = image.base64()
    return data


def _images(data: Any) -> tuple[Image, ...]:
    """The images a log kept whole (checked again: a log is data too); the rest are left out."""
    images: list[Image] = []
    for item in data if isinstance(data, list) else ():
        encoded = item.get("base64") if isinstance(item, Mapping) else None
        if not isinstance(encoded, str):
            continue
        try:
            raw = base64.b64decode(encoded)
        except ValueError:
            continue
        image = check_image(raw, _LOGGED, source=str(item.get("source", "")))
        if isinstance(image, Image):
            images.append(image)
    return tuple(images)


_LOGGED = ImageLimits(max_bytes=64 * 1024 * 1024, max_pixels=1 << 40, max_side=1 << 20)
"""Images read back from a log are checked for being images, not held to a run's limits."""


def _field_names(kind: type) -> tuple[str, ...] | None:
    """A dataclass's field names (cached: every event goes through here), None for other types."""
    try:
        return _FIELDS[kind]
    except KeyError:
        names = tuple(f.name for f in dataclasses.fields(kind)) if dataclasses.is_dataclass(kind) else None
        _FIELDS[kind] = names
        return names


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception as exc:  # noqa: BLE001 - RecursionError included
        return f"<repr() failed: {type(exc).__name__}>"


def _encode_object(value: Any, walk: _Walk) -> dict[str, Any]:
    text = _safe_repr(value)
    kind = type(value)
    room = max(min(walk.left, 20_000) - 200, 0)
    walk.spend(min(len(text), room) + 200)
    data: dict[str, Any] = {TAG: "object", "type": f"{kind.__module__}.{kind.__qualname__}",
                            "repr": cut_text(text, room, walk.owner.clean)}
    try:
        raw = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - unpicklable: the repr is all the log can keep
        raw = b""
    if 0 < len(raw) <= _MAX_PICKLE and walk.spend(len(raw) * 4 // 3 + 8):
        data["pickle"] = base64.b64encode(raw).decode()
    fields = _record_fields(value)
    if fields is not None:
        data["fields"] = {name: _value(item, walk, 1) for name, item in fields.items()}
    return data


def _record_fields(value: Any) -> dict[str, Any] | None:
    """The fields a dataclass or pydantic model shows in its repr (what the sandbox is sent of it)."""
    try:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: getattr(value, f.name) for f in dataclasses.fields(value) if f.repr}
        model_fields = getattr(type(value), "model_fields", None)
        if isinstance(model_fields, dict) and hasattr(value, "model_dump"):
            return {name: getattr(value, name, None) for name, info in model_fields.items()
                    if getattr(info, "repr", True) and not getattr(info, "exclude", False)}
    except Exception:  # noqa: BLE001 - a property that raises: keep the repr only
        return None
    return None


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _hashable(v)) for k, v in value.items())
    return value


def event_from_dict(data: Mapping[str, Any]) -> Event:
    """The typed event for a dict made by `event_to_dict`."""
    kind = data.get("kind")
    decode = _DECODERS.get(str(kind))
    if decode is None:
        raise ConfigError(f"unknown event kind {kind!r} in the run log; is it from a newer codeact?")
    try:
        return decode(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"malformed {kind} event in the run log: {exc!r}") from exc


def decode_tool_call(data: Mapping[str, Any]) -> ToolCallRecord:
    arguments = decode_value(data.get("arguments"))
    return ToolCallRecord(
        name=data["name"],
        arguments=dict(arguments) if isinstance(arguments, Mapping) else {},
        result=decode_value(data.get("result")),
        error=data.get("error"),
        duration_s=float(data.get("duration_s", 0.0)),
    )


def _arguments(data: Any) -> dict[str, Any] | None:
    value = decode_value(data)
    return dict(value) if isinstance(value, Mapping) else None


def decode_execution(data: Mapping[str, Any]) -> Execution:
    error = data.get("error")
    kind, extra = _execution_class(data)
    return kind(
        stdout=data.get("stdout", ""),
        stderr=data.get("stderr", ""),
        result=data.get("result"),
        error=ExecError(error["type"], error["message"], error["traceback"]) if error else None,
        is_final=bool(data.get("is_final", False)),
        final_answer=decode_value(data.get("final_answer")),
        timed_out=bool(data.get("timed_out", False)),
        state_lost=bool(data.get("state_lost", False)),
        duration_s=float(data.get("duration_s", 0.0)),
        tool_calls=tuple(decode_tool_call(c) for c in data.get("tool_calls", ())),
        images=_images(data.get("images")),
        extra_usage=_usage(data.get("extra_usage")),
        extra_cost=float(data.get("extra_cost") or 0.0),
        **extra,
    )


_TYPE = "$type"


def _execution_class(data: Mapping[str, Any]) -> tuple[type[Execution], dict[str, Any]]:
    """The recorded Execution subclass (only codeact's own) and its extra fields, as tuples.

    The class is looked up among the loaded subclasses of Execution, never imported by name: a
    log cannot make this process import a module. (The agent kind that wrote such a record has
    loaded its class, since `codeact` imports every agent kind.)"""
    name = data.get(_TYPE)
    if not isinstance(name, str) or not name.startswith("codeact."):
        return Execution, {}
    kind = _execution_kinds().get(name)
    if kind is None:
        return Execution, {}
    base = {f.name for f in dataclasses.fields(Execution)}
    extra = {f.name: _tuples(data[f.name]) for f in dataclasses.fields(kind) if f.name not in base and f.name in data}
    return kind, extra


def _execution_kinds() -> dict[str, type[Execution]]:
    """"module:qualname" -> each loaded dataclass subclass of Execution."""
    found: dict[str, type[Execution]] = {}
    pending = list(Execution.__subclasses__())
    while pending:
        kind = pending.pop()
        pending += kind.__subclasses__()
        if dataclasses.is_dataclass(kind):
            found[f"{kind.__module__}:{kind.__qualname__}"] = kind
    return found


def _tuples(value: Any) -> Any:
    """Lists back to tuples, as frozen dataclasses hold them."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def _usage(data: Mapping[str, Any] | None) -> Usage:
    data = data or {}
    return Usage(int(data.get("prompt_tokens", 0)), int(data.get("completion_tokens", 0)))


def _native_call(data: Any) -> Any:
    if isinstance(data, Mapping) and {"id", "name", "arguments"} <= data.keys():
        return ToolCall(data["id"], data["name"], dict(data["arguments"] or {}))
    return data


def _message(data: Mapping[str, Any]) -> Message:
    calls = tuple(_native_call(c) for c in data.get("tool_calls", ()))
    return Message(data["role"], data["content"], calls, data.get("tool_call_id"), _images(data.get("images")))


def _step(data: Mapping[str, Any]) -> Step:
    return Step(
        index=int(data["index"]),
        thought=data.get("thought", ""),
        code=data.get("code"),
        observation=data.get("observation", ""),
        usage=_usage(data.get("usage")),
        model_seconds=float(data.get("model_seconds", 0.0)),
        exec_seconds=float(data.get("exec_seconds", 0.0)),
        tool_calls=tuple(decode_tool_call(c) for c in data.get("tool_calls", ())),
        is_final=bool(data.get("is_final", False)),
        error=data.get("error"),
        reply=data.get("reply", ""),
    )


_DECODERS: dict[str, Callable[[Mapping[str, Any]], Event]] = {
    "run_started": lambda d: RunStarted(
        d["task"], d["agent"], d["model"], tuple(d.get("tools", ())), int(d["max_steps"]), d.get("run_id")
    ),
    "model_requested": lambda d: ModelRequested(
        int(d["step"]), int(d["keep"]), tuple(_message(m) for m in d.get("messages", ()))
    ),
    "model_replied": lambda d: ModelReplied(
        int(d["step"]), d["text"], _usage(d.get("usage")), float(d.get("seconds", 0.0)),
        tuple(_native_call(c) for c in d.get("tool_calls", ())), d.get("finish_reason"),
    ),
    "action_parsed": lambda d: ActionParsed(int(d["step"]), d.get("thought", ""), d.get("code"), d.get("note", "")),
    "tool_called": lambda d: ToolCalled(int(d["step"]), decode_tool_call(d["call"])),
    "approval_requested": lambda d: ApprovalRequested(
        int(d["step"]), str(d["request_id"]), str(d["tool"]), _arguments(d.get("arguments")) or {},
        str(d.get("reason", "")), str(d.get("description", "")),
        None if d.get("timeout_s") is None else float(d["timeout_s"]),
    ),
    "approval_decided": lambda d: ApprovalDecided(
        int(d["step"]), str(d["request_id"]), str(d["tool"]), str(d["verdict"]), str(d.get("message", "")),
        _arguments(d.get("arguments")), str(d.get("by", "")), bool(d.get("timed_out", False)),
        float(d.get("seconds", 0.0)),
    ),
    "observed": lambda d: Observed(
        int(d["step"]), d["observation"], float(d.get("seconds", 0.0)), d.get("error"),
        decode_execution(d["execution"]) if d.get("execution") else None,
    ),
    "step_finished": lambda d: StepFinished(_step(d["step"])),
    "images_shown": lambda d: ImagesShown(int(d["step"]), tuple(str(s) for s in d.get("shown", ()))),
    "budget_hit": lambda d: BudgetHit(
        int(d["step"]), d["budget"], float(d["limit"]), float(d["used"]), d.get("message", "")
    ),
    "log_note": lambda d: LogNote(
        d.get("step"), str(d.get("reason", "")), str(d.get("message", "")), int(d.get("dropped", 0))
    ),
    "run_resumed": lambda d: RunResumed(
        d["run_id"], int(d["from_step"]), int(d.get("reexecuted", 0)), tuple(d.get("diverged", ()))
    ),
    "plan_updated": lambda d: PlanUpdated(
        int(d["step"]), str(d.get("text", "")), _usage(d.get("usage")), float(d.get("seconds", 0.0))
    ),
    "files_changed": lambda d: FilesChanged(
        tuple(FileChange(str(f["path"]), f["change"], int(f.get("size", 0)), str(f.get("type", "")))
              for f in d.get("files", ())),
        int(d.get("more", 0)),
    ),
    "run_finished": lambda d: RunFinished(
        d["status"], decode_value(d.get("output")), _usage(d.get("usage")), int(d.get("steps", 0)),
        float(d.get("seconds", 0.0)), d.get("error"),
    ),
}
