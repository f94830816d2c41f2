"""The host end of the wire: frames with deadlines, and values in both directions.

The kernel is untrusted. A frame from it is bounded before it is decoded: its size
(`MAX_KERNEL_FRAME_BYTES`), then its nesting depth and value count (`scan_frame`, linear in its
size, run before `json.loads`, whose cost and memory would otherwise follow the attacker's
shape). Its values come back as JSON data plus the tagged forms both ends share
(`guest.wire.TAGS`), rebuilt here without running code and in time linear in their size (sets and
dicts whose keys collide in hash stay lists); anything else is an `OpaqueValue` holding a type
name and a repr.

The other direction carries only what the tool returned, encoded explicitly: JSON, the same
tagged forms, a dataclass or pydantic model as its fields (minus fields hidden from its repr
or named like a credential), and any other object as an opaque handle naming only its type.
Nothing is pickled, so an object's graph (a client and its API key) never enters the sandbox.
"""

from __future__ import annotations

import binascii
import dataclasses
import datetime
import decimal
import json
import pathlib
import select
import socket
import sys
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from codeact.errors import SandboxError
from codeact.models.images import Image, ImageLimits, check_image
from codeact.sandbox.guest.display import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, MAX_IMAGES_PER_STEP
from codeact.sandbox.guest.wire import (
    HEADER_BYTES,
    MAX_DEPTH,
    MAX_FRAME_BYTES,
    MAX_KERNEL_FRAME_BYTES,
    TAG,
    frame_bytes,
    frame_size,
    scan_frame,
)
from codeact.tools._secrets import REDACTED, env_secrets, looks_secret, secret_name

__all__ = [
    "MAX_FRAME_BYTES",
    "MAX_KERNEL_FRAME_BYTES",
    "BridgeClosed",
    "FrameChannel",
    "FrameError",
    "OpaqueValue",
    "UnsendableValue",
    "STEP_IMAGES",
    "encode_frame",
    "from_kernel",
    "images_from_kernel",
    "to_kernel",
]

_ENV_SECRETS: list[tuple[str, ...]] = []  # for one to_kernel call (the same for every thread)
_MAX_COLLISIONS = 32  # equal hashes among a set's members before it stays a list
_TEXT_LIMIT = 1_000  # characters of a tagged scalar's text (an ISO date, a Decimal)


class FrameError(SandboxError):
    """The kernel sent something that is not a valid frame: oversized, not JSON, wrong shape."""


class BridgeClosed(SandboxError):
    """The kernel's end of the bridge is gone (it exited, crashed or closed the socket)."""


class UnsendableValue(TypeError):
    """A tool result cannot be encoded for the sandbox (too deep, or too large for one frame)."""


@dataclass(frozen=True)
class OpaqueValue:
    """A value from the kernel that JSON cannot carry: the host only gets its type and repr.

    `str()` gives the repr, so an opaque final answer still prints as the model saw it.
    """

    type_name: str
    text: str

    def __str__(self) -> str:
        return self.text


def encode_frame(message: Mapping[str, Any], limit: int = MAX_FRAME_BYTES) -> bytes:
    """The frame's bytes (length prefix included); FrameError if it is over `limit`."""
    data = json.dumps(message).encode()
    if len(data) > limit:
        raise FrameError(f"a message of {len(data):,} bytes is over the {limit:,}-byte frame limit")
    return frame_bytes(data)


class FrameChannel:
    """Length-prefixed JSON frames over a connected stream socket, with timeouts.

    Args:
        sock: the host end of the bridge.
        max_frame: largest frame accepted from the peer.
    """

    def __init__(self, sock: socket.socket, *, max_frame: int = MAX_KERNEL_FRAME_BYTES) -> None:
        self.sock = sock
        self.max_frame = max_frame
        self.last_size = 0  # bytes of the last frame received
        self._buf = bytearray()

    def send(self, message: Mapping[str, Any], *, timeout: float | None = None) -> None:
        """Send one frame. FrameError if it is too large; BridgeClosed if the kernel is gone."""
        self.send_bytes(encode_frame(message), timeout=timeout)

    def send_bytes(self, frame: bytes, *, timeout: float | None = None) -> None:
        """Send a frame made by `encode_frame`."""
        try:
            self.sock.settimeout(timeout)
            self.sock.sendall(frame)
        except OSError as exc:  # includes TimeoutError: a kernel that stopped reading
            raise BridgeClosed(f"could not send to the kernel: {exc}") from exc

    def recv(self, timeout: float | None) -> dict[str, Any] | None:
        """The next frame, or None when `timeout` seconds pass first (0 means: only if ready)."""
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        while True:
            frame = self._parse()
            if frame is not None:
                return frame
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                poller = select.poll()  # not select(): it cannot watch fds past 1024
                poller.register(self.sock, select.POLLIN)
                if not poller.poll(0):
                    return None
                remaining = 0.0
            try:
                self.sock.settimeout(remaining if remaining is None or remaining > 0 else 0.0)
                chunk = self.sock.recv(min(max(1 << 16, self._wanted()), 1 << 20))  # recv(n) allocates n
            except (TimeoutError, BlockingIOError):
                return None
            except OSError as exc:
                raise BridgeClosed(f"the connection to the kernel failed: {exc}") from exc
            if not chunk:
                raise BridgeClosed("the kernel closed the connection")
            self._buf += chunk

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def _wanted(self) -> int:
        if len(self._buf) < HEADER_BYTES:
            return HEADER_BYTES - len(self._buf)
        return HEADER_BYTES + frame_size(self._buf) - len(self._buf)

    def _parse(self) -> dict[str, Any] | None:
        buf = self._buf
        if len(buf) < HEADER_BYTES:
            return None
        size = frame_size(buf)
        if size > self.max_frame:
            raise FrameError(f"a frame of {size:,} bytes, over the {self.max_frame:,}-byte limit")
        if len(buf) < HEADER_BYTES + size:
            return None
        body = bytes(buf[HEADER_BYTES : HEADER_BYTES + size])
        del buf[: HEADER_BYTES + size]
        self.last_size = size
        problem = scan_frame(body) if size > 4 * MAX_DEPTH else None
        if problem is not None:
            raise FrameError(f"a frame with {problem}")
        try:
            frame = json.loads(body)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise FrameError(f"a frame that is not valid JSON ({type(exc).__name__}: {str(exc)[:200]})") from None
        if not isinstance(frame, dict) or not isinstance(frame.get("op"), str):
            raise FrameError("a frame that is not an object with an `op`")
        return frame


# -- values from the kernel -------------------------------------------------------------------


def from_kernel(data: Any) -> Any:
    """Rebuild a value the kernel sent (already parsed JSON). Never runs code; never fails.

    Frames were scanned before decoding, so `data` is at most MAX_DEPTH deep; deeper data
    (from elsewhere) degrades to an OpaqueValue.
    """
    try:
        return _rebuild(data, 0)
    except RecursionError:
        return OpaqueValue("unknown", "<value nested too deeply>")


#: What the host accepts of the images one step shows (the kernel holds itself to the same).
STEP_IMAGES = ImageLimits(max_bytes=MAX_IMAGE_BYTES, max_pixels=MAX_IMAGE_PIXELS,
                          max_count=MAX_IMAGES_PER_STEP)


def images_from_kernel(data: Any, limits: ImageLimits = STEP_IMAGES) -> tuple[list[Image], list[str]]:
    """The `images` of a `done` frame, checked one by one: (images, notes on those refused).

    Each item must be {mime, base64}; its bytes must be an image within `limits` whatever the
    kernel claims its type is (the MIME type comes from the bytes). Never raises.
    """
    if data is None:
        return [], []
    if not isinstance(data, list):
        return [], ["the step's images were malformed and are not shown"]
    images: list[Image] = []
    notes: list[str] = []
    for number, item in enumerate(data, 1):
        if len(images) >= limits.max_count:
            notes.append(f"{len(data) - number + 1} more image(s) not shown: at most {limits.max_count} per step")
            break
        encoded = item.get("base64") if isinstance(item, dict) else None
        if not isinstance(encoded, str) or len(encoded) > (limits.max_bytes + 2) * 4 // 3 + 4:
            notes.append(f"image {number} not shown: malformed, or over the {limits.max_bytes:,}-byte limit")
            continue
        try:
            raw = binascii.a2b_base64(encoded)
        except (binascii.Error, ValueError):
            notes.append(f"image {number} not shown: its data is not base64")
            continue
        checked = check_image(raw, limits, source="display")
        if isinstance(checked, str):
            notes.append(f"image {number} not shown: {checked}")
        else:
            images.append(checked)
    return images, notes


def _rebuild(data: Any, depth: int) -> Any:
    if depth > MAX_DEPTH + 4:
        return OpaqueValue("unknown", "<value nested too deeply>")
    if isinstance(data, list):
        return [_rebuild(v, depth + 1) for v in data]
    if not isinstance(data, dict):
        return data
    tag = data.get(TAG)
    if tag is None:
        return {k: _rebuild(v, depth + 1) for k, v in data.items()}
    items = data.get("items")
    if tag in ("tuple", "set", "frozenset", "dict") and isinstance(items, list):
        values = [_rebuild(v, depth + 1) for v in items]
        if tag == "tuple":
            return tuple(values)
        if tag == "dict":
            if not all(isinstance(v, list) and len(v) == 2 for v in values):
                return values
            keys = _hashable_all([k for k, _ in values])
            return values if keys is None else dict(zip(keys, (v for _, v in values), strict=True))
        members = _hashable_all(values)
        if members is None:
            return values
        return set(members) if tag == "set" else frozenset(members)
    if tag == "repr":
        return OpaqueValue(str(data.get("type", "unknown"))[:200], str(data.get("repr", ""))[: 2 * 10_000])
    scalar = _scalar(tag, data)
    if scalar is not None:
        return scalar
    return {k: _rebuild(v, depth + 1) for k, v in data.items()}


def _scalar(tag: Any, data: dict[str, Any]) -> Any:
    """A tagged scalar rebuilt from its checked fields, or None if the fields are not right."""
    try:
        if tag == "bytes" and isinstance(data.get("base64"), str):
            return binascii.a2b_base64(data["base64"])
        text = next((data[k] for k in ("iso", "text", "hex", "path") if k in data), None)
        if text is not None and not (isinstance(text, str) and len(text) <= _TEXT_LIMIT):
            return None
        if tag in ("datetime", "date", "time") and text is not None:
            return getattr(datetime, tag).fromisoformat(text)
        if tag == "timedelta" and all(type(data.get(k)) is int for k in ("days", "seconds", "us")):
            return datetime.timedelta(days=data["days"], seconds=data["seconds"], microseconds=data["us"])
        if tag == "decimal" and text is not None:
            return decimal.Decimal(text)
        if tag == "complex" and all(type(data.get(k)) in (int, float) for k in ("real", "imag")):
            return complex(data["real"], data["imag"])
        if tag == "uuid" and text is not None:
            return uuid.UUID(hex=text)
        if tag == "path" and text is not None:
            return pathlib.PurePosixPath(text)  # a path inside the sandbox: not one on the host
    except (ValueError, TypeError, OverflowError, ArithmeticError, binascii.Error):
        return None
    return None


def _hashable_all(values: list[Any]) -> list[Any] | None:
    """`values` made hashable (lists as tuples), or None if that fails or too many hashes collide.

    Ints, floats and tuples hash predictably, so a forged set of colliding members would cost
    quadratic time to build; a few collisions are normal, dozens are an attack.
    """
    try:
        members = [_hashable(v) for v in values]
        counts = Counter(hash(m) for m in members)
    except (TypeError, RecursionError):
        return None
    if counts and max(counts.values()) > _MAX_COLLISIONS:
        return None
    return members


def _hashable(value: Any) -> Any:
    """Lists stand for tuples in keys and set members: tuple(...) them so they hash."""
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value


# -- values to the kernel ---------------------------------------------------------------------


def to_kernel(value: Any) -> dict[str, Any]:
    """The fields of a `return` frame carrying `value`, encoded explicitly (see the module doc).

    UnsendableValue if it nests deeper than the wire allows (a cycle, for one).
    """
    _ENV_SECRETS.clear()  # read once per result, when a record has a text field
    return {"json": _encode(value, 0)}


def _encode(value: Any, depth: int) -> Any:
    t = type(value)
    if value is None or t is bool or t is int or t is str:
        return value
    if t is float:
        return value
    if depth >= MAX_DEPTH - 2:
        raise UnsendableValue(
            f"its result nests deeper than {MAX_DEPTH - 2} levels (or refers to itself); return flatter data"
        )
    depth += 1
    if t is list:
        return [_encode(v, depth) for v in value]
    if t is dict:
        if TAG not in value and all(type(k) is str for k in value):
            return {k: _encode(v, depth) for k, v in value.items()}
        return {TAG: "dict", "items": [[_encode(k, depth), _encode(v, depth)] for k, v in value.items()]}
    if t is tuple or t is set or t is frozenset:
        return {TAG: t.__name__, "items": [_encode(v, depth) for v in value]}
    if t is bytes or t is bytearray or t is memoryview:
        return {TAG: "bytes", "base64": binascii.b2a_base64(bytes(value), newline=False).decode()}
    scalar = _encode_scalar(value)
    if scalar is not None:
        return scalar
    for base in (bool, int, float, str):  # IntEnum, StrEnum and other plain subclasses: the value
        if isinstance(value, base):
            return base(value)
    array = _encode_numpy(value, depth)
    if array is not None:
        return array
    fields = _record_fields(value)
    if fields is not None:
        return {TAG: "record", "type": _type_name(value), "fields": {k: _field(k, v, depth) for k, v in fields.items()}}
    if isinstance(value, (list, tuple)):  # namedtuple and list subclasses
        return _encode(list(value) if isinstance(value, list) else tuple(value), depth - 1)
    if isinstance(value, Mapping):
        return _encode(dict(value), depth - 1)
    return {TAG: "opaque", "type": _type_name(value)}


def _encode_scalar(value: Any) -> dict[str, Any] | None:
    t = type(value)
    if t is datetime.datetime or t is datetime.date or t is datetime.time:
        return {TAG: t.__name__, "iso": value.isoformat()}
    if t is datetime.timedelta:
        return {TAG: "timedelta", "days": value.days, "seconds": value.seconds, "us": value.microseconds}
    if t is decimal.Decimal:
        return {TAG: "decimal", "text": str(value)}
    if t is complex:
        return {TAG: "complex", "real": value.real, "imag": value.imag}
    if t is uuid.UUID:
        return {TAG: "uuid", "hex": value.hex}
    if isinstance(value, pathlib.PurePath):
        return {TAG: "path", "path": str(value)}
    return None


def _encode_numpy(value: Any, depth: int) -> Any:
    """A numpy array as dtype, shape and raw bytes; a numpy scalar as its Python value."""
    numpy = sys.modules.get("numpy")
    if numpy is None:
        return None
    if isinstance(value, numpy.generic):
        return _encode(value.item(), depth)
    if type(value) is numpy.ndarray and not value.dtype.hasobject:
        return {
            TAG: "ndarray",
            "dtype": value.dtype.str,
            "shape": list(value.shape),
            "base64": binascii.b2a_base64(numpy.ascontiguousarray(value).tobytes(), newline=False).decode(),
        }
    return None


def _record_fields(value: Any) -> dict[str, Any] | None:
    """The shown fields of a dataclass instance or a pydantic model, or None for anything else.

    Fields hidden from the repr (`field(repr=False)`, pydantic `repr=False` or `exclude=True`)
    are hidden from the sandbox too.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value) if f.repr}
    model_fields = getattr(type(value), "model_fields", None)
    if isinstance(model_fields, dict) and hasattr(value, "model_dump"):
        return {
            name: getattr(value, name, None)
            for name, info in model_fields.items()
            if getattr(info, "repr", True) and not getattr(info, "exclude", False)
        }
    return None


def _field(name: str, value: Any, depth: int) -> Any:
    """A record's field, unless its name or text says it is a credential (then only a marker)."""
    if secret_name(name) or (isinstance(value, str) and looks_secret(value, _env_secrets())):
        return {TAG: "opaque", "type": REDACTED}
    return _encode(value, depth)


def _env_secrets() -> tuple[str, ...]:
    try:
        return _ENV_SECRETS[0]
    except IndexError:  # the first text field of this result (or another thread cleared it)
        secrets = env_secrets()
        _ENV_SECRETS.append(secrets)
        return secrets


def _type_name(value: Any) -> str:
    t = type(value)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
