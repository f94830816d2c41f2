"""The wire both ends share: frame limits, value tags, the length prefix and the frame scan.

A frame is a 4-byte big-endian length, then that many bytes of UTF-8 JSON, an object with an "op":
    kernel -> host   hello  {pid, python}
                     call   {id, exec, name, args, kwargs}  a tool stub was called; wait for the reply
                     done   {id, stdout, stderr, dropped, result, error, final, final_answer,
                             interrupted, duration, images}  dropped: characters of output cut;
                                                             images: [{mime, base64}] (`display`)
    host -> kernel   tools  {tools: [{name, signature, doc, params, returns}]}
                     exec   {id, epoch, code, max_output, imports}
                     return {id, json}    raise {id, type, message}
                     shutdown {}
A `call` carries the id of the step it was made in (`exec`): the host answers only calls of the
step it is running, so a thread that outlives its step cannot act in the next one. Between
steps the kernel refuses calls itself, and a thread started in an earlier run (`epoch`: the
host's count of `start`s) cannot call tools in a later one.

Values travel as JSON plus a short list of tagged forms that both ends build explicitly (TAGS).
The host imports this module (stdlib only, no side effects on import) for the same limits, tags
and scan; `Wire` is the kernel's end of the socket.
"""

import json
import os
import threading

__all__ = [
    "HEADER_BYTES",
    "MAX_DEPTH",
    "MAX_FRAME_BYTES",
    "MAX_KERNEL_FRAME_BYTES",
    "MAX_VALUES",
    "TAG",
    "TAGS",
    "Wire",
    "frame_bytes",
    "frame_size",
    "scan_frame",
]

MAX_FRAME_BYTES = 64 * 1024 * 1024
"""Largest frame from the host (tool results)."""
MAX_KERNEL_FRAME_BYTES = 16 * 1024 * 1024
"""Largest frame the host accepts from the kernel (tool arguments, a final answer)."""
MAX_DEPTH = 64
"""Deepest nesting of arrays and objects in a frame, either way."""
MAX_VALUES = 500_000
"""Most values (containers plus items) the host decodes from one kernel frame."""
TAG = "__codeact__"
TAGS = frozenset(
    {
        "tuple", "set", "frozenset", "dict", "bytes",  # containers JSON cannot say
        "datetime", "date", "time", "timedelta", "decimal", "complex", "uuid", "path",
        "ndarray",  # numpy: dtype, shape and raw bytes
        "record",  # host -> kernel: a dataclass or pydantic model, as its fields
        "opaque",  # host -> kernel: any other object, as its type name only
        "repr",  # kernel -> host: any other object, as its type name and repr
    }
)
HEADER_BYTES = 4
"""The length prefix: a big-endian unsigned size of the JSON body that follows."""
_OPEN, _CLOSE = b"[{", b"]}"


def frame_bytes(data: bytes) -> bytes:
    """`data` (a frame's JSON body) with its length prefix."""
    return len(data).to_bytes(HEADER_BYTES, "big") + data


def frame_size(header: bytes | bytearray) -> int:
    """The body size a length prefix announces."""
    return int.from_bytes(header[:HEADER_BYTES], "big")


def scan_frame(body: bytes, *, max_depth: int = MAX_DEPTH, max_values: int = MAX_VALUES) -> str | None:
    """Why the JSON text `body` is too deep or too wide to decode, or None; cost linear in its size.

    Containers and commas are counted with bytes.count; only if that upper bound is over a
    limit are strings blanked (a bracket inside a string is text) and the count redone, and the
    nesting depth is only walked when there are enough brackets for it to matter, over the
    brackets alone.
    """
    opens = body.count(b"[") + body.count(b"{")
    values = opens + body.count(b",")
    if values <= max_values and opens <= max_depth:
        return None  # even counting brackets inside strings, it is within both limits
    if body.count(b'"'):
        body = _strings().sub(b'""', body)
        opens = body.count(b"[") + body.count(b"{")
        values = opens + body.count(b",")
    if values > max_values:
        return f"{values:,} values, over the limit of {max_values:,}"
    if opens <= max_depth:
        return None
    depth = 0
    for byte in body.translate(None, _NOT_BRACKETS):
        if byte in _OPEN:
            depth += 1
            if depth > max_depth:
                return f"values nested deeper than {max_depth} levels"
        else:
            depth -= 1
    return None


_STRINGS: list = []  # the compiled pattern, made on first use (importing `re` costs start-up time)


def _strings():  # type: ignore[no-untyped-def]
    if not _STRINGS:
        import re

        _STRINGS.append(re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL))
    return _STRINGS[0]

_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class Wire:
    """Blocking frame I/O on the inherited socket, shared by the main loop and tool-calling threads.

    One thread at a time reads (whoever is waiting and finds no reader); a frame meant for
    another waiter is left in `inbox` for it. So a thread that waits for its tool reply never
    swallows the next `exec`, and the main loop never swallows a thread's reply. Replies to
    calls nobody waits for any more are dropped. Sends are whole frames under `send_lock`.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = bytearray()
        self.send_lock = threading.Lock()
        self.cond = threading.Condition(threading.Lock())
        self.reading = False
        self.inbox: list[dict] = []
        self.waiting: set[int] = set()  # ids of calls whose reply someone waits for

    def send(self, message: dict, limit: int = MAX_KERNEL_FRAME_BYTES) -> None:
        data = json.dumps(message).encode("utf-8", "surrogatepass")
        if len(data) > limit:
            raise ValueError(f"message of {len(data):,} bytes is over the {limit:,}-byte limit")
        problem = scan_frame(data) if len(data) > 4 * MAX_DEPTH else None
        if problem is not None:
            raise ValueError(f"the value is too complex to send to the host ({problem})")
        frame = frame_bytes(data)
        with self.send_lock:
            view = memoryview(frame)
            while view:
                view = view[os.write(self.fd, view) :]

    def wait_for(self, wanted: object) -> dict:
        """The next frame `wanted(frame)` accepts, reading from the socket if no one else is."""
        cond = self.cond
        with cond:
            while True:
                for i, frame in enumerate(self.inbox):
                    if wanted(frame):  # type: ignore[operator]
                        del self.inbox[i]
                        return frame
                if not self.reading:
                    self.reading = True
                    break
                cond.wait()
        try:
            while True:
                frame = self._read()
                if wanted(frame):  # type: ignore[operator]
                    return frame
                with cond:
                    if frame.get("op") not in ("return", "raise") or frame.get("id") in self.waiting:
                        self.inbox.append(frame)
                    cond.notify_all()
        finally:
            with cond:
                self.reading = False
                cond.notify_all()

    def _read(self) -> dict:
        buf = self.buf
        while True:
            if len(buf) >= HEADER_BYTES:
                size = frame_size(buf)
                if size > MAX_FRAME_BYTES:
                    raise ValueError(f"frame of {size:,} bytes from the host")
                if len(buf) >= HEADER_BYTES + size:
                    body = bytes(buf[HEADER_BYTES : HEADER_BYTES + size])
                    del buf[: HEADER_BYTES + size]
                    frame = json.loads(body)
                    return frame if isinstance(frame, dict) else {}
                want = HEADER_BYTES + size - len(buf)
            else:
                want = HEADER_BYTES
            chunk = os.read(self.fd, min(max(want, 1 << 16), 1 << 20))  # read(n) allocates n
            if not chunk:
                os._exit(0)  # the host is gone: nothing left to do
            buf += chunk
