"""The host end of the wire: frames with deadlines, and values in both directions.

The kernel is untrusted. Everything it sends is parsed as JSON and checked before use; its
values come back as JSON data plus a few tagged forms (tuple, set, bytes, a dict with
non-string keys) rebuilt here without running any code, and anything else only as an
`OpaqueValue` holding a type name and a repr. The other direction is trusted, so tool results
that JSON cannot carry travel as pickles.
"""

from __future__ import annotations

import binascii
import json
import pickle
import select
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from codeact.errors import SandboxError
from codeact.sandbox.kernel import MAX_FRAME_BYTES, TAG, truncate_middle

__all__ = [
    "MAX_FRAME_BYTES",
    "BridgeClosed",
    "FrameChannel",
    "FrameError",
    "OpaqueValue",
    "UnsendableValue",
    "from_kernel",
    "to_kernel",
    "truncate_middle",
]

_REPR_LIMIT = 2_000


class FrameError(SandboxError):
    """The kernel sent something that is not a valid frame: oversized, not JSON, wrong shape."""


class BridgeClosed(SandboxError):
    """The kernel's end of the bridge is gone (it exited, crashed or closed the socket)."""


class UnsendableValue(TypeError):
    """A tool result can be neither JSON nor pickled, or is too large for one frame."""


@dataclass(frozen=True)
class OpaqueValue:
    """A value from the kernel that JSON cannot carry: the host only gets its type and repr.

    `str()` gives the repr, so an opaque final answer still prints as the model saw it.
    """

    type_name: str
    text: str

    def __str__(self) -> str:
        return self.text


class FrameChannel:
    """Length-prefixed JSON frames over a connected stream socket, with timeouts."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buf = bytearray()

    def send(self, message: Mapping[str, Any], *, timeout: float | None = None) -> None:
        """Send one frame. FrameError if it is too large; BridgeClosed if the kernel is gone."""
        data = json.dumps(message).encode()
        if len(data) > MAX_FRAME_BYTES:
            raise FrameError(
                f"a message of {len(data):,} bytes is over the {MAX_FRAME_BYTES:,}-byte frame limit"
            )
        try:
            self.sock.settimeout(timeout)
            self.sock.sendall(len(data).to_bytes(4, "big") + data)
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
                chunk = self.sock.recv(max(1 << 16, self._wanted()))
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
        if len(self._buf) < 4:
            return 4 - len(self._buf)
        return 4 + int.from_bytes(self._buf[:4], "big") - len(self._buf)

    def _parse(self) -> dict[str, Any] | None:
        buf = self._buf
        if len(buf) < 4:
            return None
        size = int.from_bytes(buf[:4], "big")
        if size > MAX_FRAME_BYTES:
            raise FrameError(f"a frame of {size:,} bytes, over the {MAX_FRAME_BYTES:,}-byte limit")
        if len(buf) < 4 + size:
            return None
        body = bytes(buf[4 : 4 + size])
        del buf[: 4 + size]
        try:
            frame = json.loads(body)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise FrameError(f"a frame that is not valid JSON ({type(exc).__name__}: {exc})") from None
        if not isinstance(frame, dict) or not isinstance(frame.get("op"), str):
            raise FrameError("a frame that is not an object with an `op`")
        return frame


# -- values -----------------------------------------------------------------------------------


def from_kernel(data: Any) -> Any:
    """Rebuild a value the kernel sent (already parsed JSON). Never runs code; never fails."""
    try:
        return _rebuild(data, 0)
    except RecursionError:
        return OpaqueValue("unknown", "<value nested too deeply>")


def _rebuild(data: Any, depth: int) -> Any:
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
        try:
            if tag == "tuple":
                return tuple(values)
            if tag == "dict":
                return {_hashable(k): v for k, v in values}
            return {"set": set, "frozenset": frozenset}[tag](_hashable(v) for v in values)
        except (TypeError, ValueError):
            return values
    if tag == "bytes" and isinstance(data.get("base64"), str):
        try:
            return binascii.a2b_base64(data["base64"])
        except (binascii.Error, ValueError):
            pass
    if tag == "repr":
        return OpaqueValue(str(data.get("type", "unknown"))[:200], str(data.get("repr", ""))[: 2 * 10_000])
    return {k: _rebuild(v, depth + 1) for k, v in data.items()}


def _hashable(value: Any) -> Any:
    """Lists stand for tuples in keys and set members: tuple(...) them so they hash."""
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value


def to_kernel(value: Any) -> dict[str, Any]:
    """The fields of a `return` frame carrying `value`: plain JSON when exact, else a pickle."""
    if _plain_json(value, 0):
        return {"json": value}
    try:
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # noqa: BLE001 - any pickling failure means the same to the model
        raise UnsendableValue(
            f"it returned a {_type_name(value)} object, which cannot be sent into the sandbox "
            f"({type(exc).__name__}: {exc}); return plain data (str, numbers, lists, dicts) instead"
        ) from None
    if len(data) * 4 // 3 > MAX_FRAME_BYTES - 4096:
        raise UnsendableValue(
            f"its result is too large to send into the sandbox ({len(data):,} bytes pickled)"
        )
    return {
        "pickle": binascii.b2a_base64(data, newline=False).decode(),
        "type": _type_name(value),
        "repr": truncate_middle(_safe_repr(value), _REPR_LIMIT),
    }


def _plain_json(value: Any, depth: int) -> bool:
    t = type(value)
    if value is None or t is bool or t is int or t is float or t is str:
        return True
    if depth > 50:
        return False
    if t is list:
        return all(_plain_json(v, depth + 1) for v in value)
    if t is dict:
        return all(type(k) is str and _plain_json(v, depth + 1) for k, v in value.items())
    return False


def _type_name(value: Any) -> str:
    t = type(value)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception as exc:  # noqa: BLE001
        return f"<repr() failed: {type(exc).__name__}>"
