"""The code that runs *inside* the sandbox: a persistent Python namespace driven over the bridge.

Launched as `python kernel.py --fd N` with one end of a socketpair inherited as fd N. It is
stdlib only and imports nothing from codeact, because it starts in a scrubbed (and possibly
isolated) interpreter where start-up time matters and the codeact package may not exist.
The host imports this module too, for the wire constants, the value tags and `scan_frame`, so
both ends share one definition of the wire; importing it has no side effects.

Wire protocol: a frame is a 4-byte big-endian length, then that many bytes of UTF-8 JSON, an
object with an "op":
    kernel -> host   hello  {pid, python}
                     call   {id, exec, name, args, kwargs}  a tool stub was called; wait for the reply
                     done   {id, stdout, stderr, dropped, result, error, final, final_answer,
                             interrupted, duration}      dropped: characters of output cut
    host -> kernel   tools  {tools: [{name, signature, doc, params, returns}]}
                     exec   {id, epoch, code, max_output, imports}
                     return {id, json}    raise {id, type, message}
                     shutdown {}
A `call` carries the id of the step it was made in (`exec`): the host answers only calls of the
step it is running, so a thread that outlives its step cannot act in the next one. Between
steps the kernel refuses calls itself, and a thread started in an earlier run (`epoch`: the
host's count of `start`s) cannot call tools in a later one.

Values travel as JSON plus a short list of tagged forms that both ends build explicitly (TAGS:
tuple, set, dict with other keys, bytes, datetime types, Decimal, complex, UUID, paths, numpy
arrays). Nothing is ever pickled in either direction: from the kernel anything else arrives as a
repr, from the host as a typed record (dataclass fields) or an opaque handle naming its type.
"""

import _ast
import binascii
import codecs
import io
import json
import os
import select
import signal
import sys
import threading
import time

__all__ = [
    "MAX_DEPTH",
    "MAX_FRAME_BYTES",
    "MAX_KERNEL_FRAME_BYTES",
    "MAX_VALUES",
    "TAG",
    "TAGS",
    "Kernel",
    "ToolCallError",
    "from_host",
    "main",
    "scan_frame",
    "to_wire",
    "truncate_middle",
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
_HERE = (lambda: None).__code__.co_filename
_CO_COROUTINE = 0x80
_REPR_LIMIT = 10_000
_OPEN, _CLOSE = b"[{", b"]}"


def truncate_middle(text: str, limit: int) -> str:
    """Keep the first and last `limit // 2` characters of `text`, with a marker in between."""
    if len(text) <= limit:
        return text
    head, tail = limit - limit // 2, limit // 2
    dropped = len(text) - head - tail
    return f"{text[:head]}\n[... {dropped:,} characters truncated ...]\n{text[len(text) - tail :]}"


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


# -- values sent to the host ------------------------------------------------------------------


def to_wire(value: object, depth: int = 0) -> object:
    """`value` as JSON-compatible data; what JSON cannot say is tagged, anything else is a repr."""
    t = type(value)
    if value is None or t is bool or t is int or t is float or t is str:
        return value
    if depth >= MAX_DEPTH - 8:  # room for the frame around the value
        return _opaque(value)
    depth += 1
    if t is list:
        return [to_wire(v, depth) for v in value]  # type: ignore[attr-defined]
    if t is dict:
        items = value.items()  # type: ignore[attr-defined]
        if TAG not in value and all(type(k) is str for k in value):  # type: ignore[operator, attr-defined]
            return {k: to_wire(v, depth) for k, v in items}
        return {TAG: "dict", "items": [[to_wire(k, depth), to_wire(v, depth)] for k, v in items]}
    if t is tuple or t is set or t is frozenset:
        return {TAG: t.__name__, "items": [to_wire(v, depth) for v in value]}  # type: ignore[attr-defined]
    if t is bytes or t is bytearray:
        return {TAG: "bytes", "base64": binascii.b2a_base64(value, newline=False).decode()}  # type: ignore[arg-type]
    try:
        tagged = _tagged_scalar(value)
        if tagged is not None:
            return tagged
        for base in (bool, int, float, str):  # subclasses: enums, numpy.float64...
            if isinstance(value, base):
                return base(value)  # type: ignore[call-overload]
        if isinstance(value, (list, tuple, dict, set, frozenset)):  # namedtuple, OrderedDict...
            for container in (dict, tuple, list, set, frozenset):
                if isinstance(value, container):
                    return to_wire(container(value), depth)  # type: ignore[call-overload]
        if t.__module__ == "numpy" and hasattr(value, "tolist"):
            return to_wire(value.tolist(), depth)  # type: ignore[attr-defined]
        if hasattr(t, "__index__"):
            return int(value.__index__())  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - odd objects degrade to their repr
        pass
    return _opaque(value)


def _tagged_scalar(value: object) -> dict | None:
    """The tagged form of a datetime, Decimal, complex, UUID or path (exact types only), or None."""
    name = type(value).__name__
    module = type(value).__module__
    if module == "datetime" and name in ("datetime", "date", "time"):
        return {TAG: name, "iso": value.isoformat()}  # type: ignore[attr-defined]
    if module == "datetime" and name == "timedelta":
        return {TAG: "timedelta", "days": value.days, "seconds": value.seconds, "us": value.microseconds}  # type: ignore[attr-defined]
    if module in ("decimal", "_decimal", "_pydecimal") and name == "Decimal":
        return {TAG: "decimal", "text": str(value)}
    if type(value) is complex:
        return {TAG: "complex", "real": value.real, "imag": value.imag}
    if module == "uuid" and name == "UUID":
        return {TAG: "uuid", "hex": value.hex}  # type: ignore[attr-defined]
    if module == "pathlib" and name in ("Path", "PosixPath", "PurePath", "PurePosixPath"):
        return {TAG: "path", "path": str(value)}
    return None


def _opaque(value: object) -> dict[str, str]:
    t = type(value)
    try:
        text = repr(value)
    except Exception as exc:  # noqa: BLE001
        text = f"<{t.__qualname__} object; repr() failed: {type(exc).__name__}>"
    return {
        TAG: "repr",
        "type": f"{t.__module__}.{t.__qualname__}",
        "repr": truncate_middle(text, _REPR_LIMIT),
    }


# -- values from the host ---------------------------------------------------------------------


class HostObject:
    """A tool result of a type that is not sent into the sandbox: only its type name crosses.

    The object (and whatever it holds: clients, credentials) stays on the host.
    """

    __slots__ = ("type_name",)

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<host object {self.type_name} (not sent into the sandbox)>"


class HostRecord:
    """A dataclass or pydantic model from a tool, rebuilt as its fields: `page.items` works."""

    _type_name: str
    _fields: dict

    def __init__(self, type_name: str, fields: dict) -> None:
        object.__setattr__(self, "_type_name", type_name)
        object.__setattr__(self, "_fields", fields)

    def __getattr__(self, name: str) -> object:
        fields = object.__getattribute__(self, "_fields")
        if name in fields:
            return fields[name]
        raise AttributeError(f"{self._type_name} has no field {name!r}; its fields: {', '.join(fields)}")

    def __setattr__(self, name: str, value: object) -> None:
        self._fields[name] = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HostRecord) and (self._type_name, self._fields) == (other._type_name, other._fields)

    __hash__ = None  # type: ignore[assignment]

    def __dir__(self) -> list:
        return list(self._fields)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._fields.items())
        return f"{self._type_name.rpartition('.')[2]}({inner})"

    def _asdict(self) -> dict:
        return dict(self._fields)


def from_host(data: object) -> object:
    """Rebuild a tool result the host encoded (parsed JSON, tagged forms as in TAGS)."""
    if isinstance(data, list):
        return [from_host(v) for v in data]
    if not isinstance(data, dict):
        return data
    tag = data.get(TAG)
    if tag is None:
        return {k: from_host(v) for k, v in data.items()}
    items = data.get("items")
    if tag in ("tuple", "set", "frozenset", "dict") and isinstance(items, list):
        values = [from_host(v) for v in items]
        if tag == "tuple":
            return tuple(values)
        if tag == "dict":
            return dict(values)  # type: ignore[arg-type]  # [key, value] pairs
        return (set if tag == "set" else frozenset)(values)
    if tag == "record":
        fields = data.get("fields")
        return HostRecord(str(data.get("type")), from_host(fields) if isinstance(fields, dict) else {})  # type: ignore[arg-type]
    if tag == "opaque":
        return HostObject(str(data.get("type")))
    if tag == "ndarray":
        return _ndarray(data)
    return _scalar_from_tag(tag, data)


def _scalar_from_tag(tag: object, data: dict) -> object:
    if tag == "bytes":
        return binascii.a2b_base64(data["base64"])
    if tag in ("datetime", "date", "time"):
        import datetime

        return getattr(datetime, tag).fromisoformat(data["iso"])  # type: ignore[arg-type]
    if tag == "timedelta":
        import datetime

        return datetime.timedelta(days=data["days"], seconds=data["seconds"], microseconds=data["us"])
    if tag == "decimal":
        import decimal

        return decimal.Decimal(data["text"])
    if tag == "complex":
        return complex(data["real"], data["imag"])
    if tag == "uuid":
        import uuid

        return uuid.UUID(hex=data["hex"])
    if tag == "path":
        import pathlib

        return pathlib.Path(data["path"])
    return data


def _ndarray(data: dict) -> object:
    try:
        import numpy
    except ImportError:
        return HostObject("numpy.ndarray (numpy is not installed in the sandbox)")
    raw = binascii.a2b_base64(data["base64"])
    return numpy.frombuffer(raw, dtype=numpy.dtype(data["dtype"])).reshape(data["shape"]).copy()


# -- frames -----------------------------------------------------------------------------------


class _Wire:
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
        frame = len(data).to_bytes(4, "big") + data
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
            if len(buf) >= 4:
                size = int.from_bytes(buf[:4], "big")
                if size > MAX_FRAME_BYTES:
                    raise ValueError(f"frame of {size:,} bytes from the host")
                if len(buf) >= 4 + size:
                    body = bytes(buf[4 : 4 + size])
                    del buf[: 4 + size]
                    frame = json.loads(body)
                    return frame if isinstance(frame, dict) else {}
                want = 4 + size - len(buf)
            else:
                want = 4
            chunk = os.read(self.fd, min(max(want, 1 << 16), 1 << 20))  # read(n) allocates n
            if not chunk:
                os._exit(0)  # the host is gone: nothing left to do
            buf += chunk


# -- output capture ---------------------------------------------------------------------------


class _Capped:
    """Text kept as a head and a tail of bounded size, however much is written."""

    def __init__(self, limit: int) -> None:
        self.head_limit = limit - limit // 2
        self.tail_limit = limit // 2
        self.head: list[str] = []
        self.head_len = 0
        self.tail: list[str] = []
        self.tail_len = 0
        self.total = 0

    def add(self, text: str) -> None:
        n = len(text)
        self.total += n
        start = 0
        room = self.head_limit - self.head_len
        if room > 0:
            part = text[:room]
            self.head.append(part)
            self.head_len += len(part)
            if n <= room:
                return
            start = room
        if n - start >= self.tail_limit:  # slice only what is kept: a 200 MB write costs nothing
            self.tail = [text[n - self.tail_limit :]] if self.tail_limit else []
            self.tail_len = self.tail_limit
            return
        self.tail.append(text[start:] if start else text)
        self.tail_len += n - start
        if self.tail_len > 2 * self.tail_limit + 1024:
            joined = "".join(self.tail)
            self.tail = [joined[len(joined) - self.tail_limit :]]
            self.tail_len = self.tail_limit

    def dropped(self) -> int:
        return max(self.total - self.head_len - min(self.tail_len, self.tail_limit), 0)

    def text(self) -> str:
        head = "".join(self.head)
        tail = "".join(self.tail)
        if len(tail) > self.tail_limit:
            tail = tail[len(tail) - self.tail_limit :] if self.tail_limit else ""
        dropped = self.total - len(head) - len(tail)
        if dropped <= 0:
            return head + tail
        return f"{head}\n[... {dropped:,} characters truncated ...]\n{tail}"


class _Output:
    """The current step's stdout and stderr, fed by sys.stdout/sys.stderr and by fds 1 and 2.

    Fds 1 and 2 are pipes drained by a thread, so os.write(1, ...) and subprocesses are
    captured and a flood never blocks the writer or grows memory past the caps.
    Python-level writes are appended to `pending` without a lock (list.append is atomic) and
    folded into the capped buffer in batches, under the lock, by whoever writes next to it:
    print() stays within ~25% of printing to a file, and pipe data lands after the prints
    that came before it.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.limit = 20_000
        self.streams = {1: _Capped(self.limit), 2: _Capped(self.limit)}
        self.pending: dict[int, list[str]] = {1: [], 2: []}
        self.readers: dict[int, int] = {}  # pipe read end -> 1 or 2
        self.writers: dict[int, int] = {}  # 1 or 2 -> a private copy of the pipe's write end
        self.decoders: dict[int, codecs.IncrementalDecoder] = {}

    def fold(self, which: int) -> None:
        with self.lock:
            self._fold(which)

    def _fold(self, which: int) -> None:  # the lock is held
        items = self.pending[which]
        count = len(items)  # other threads may append meanwhile; only this prefix is taken
        if count > 8:
            self.streams[which].add("".join(items[:count]))
        else:  # few items, maybe a huge one: do not copy it
            for text in items[:count]:
                self.streams[which].add(text)
        del items[:count]

    def capture_fds(self, watch_fd: int) -> None:
        for which in (1, 2):
            r, w = os.pipe()
            os.set_blocking(r, False)
            os.dup2(w, which)
            self.readers[r] = which
            self.writers[which] = w
            self.decoders[r] = codecs.getincrementaldecoder("utf-8")("replace")
        threading.Thread(
            target=self._drain_forever, args=(watch_fd,), name="codeact-output", daemon=True
        ).start()

    def reattach(self) -> None:
        """Point fds 1 and 2 back at the pipes, in case model code redirected them."""
        for which, w in self.writers.items():
            try:
                os.dup2(w, which)
            except OSError:
                pass

    def take(self, next_limit: int) -> tuple[str, str, int]:
        """stdout and stderr since the last take, and how many characters the caps dropped."""
        for original in (sys.__stdout__, sys.__stderr__):  # they write to fds 1 and 2, buffered
            try:
                if original is not None:
                    original.flush()
            except (OSError, ValueError):
                pass
        with self.lock:
            self._fold(1)
            self._fold(2)
            for r in list(self.readers):
                self._drain(r)
            out, err = self.streams[1].text(), self.streams[2].text()
            dropped = self.streams[1].dropped() + self.streams[2].dropped()
            self.limit = next_limit
            self.streams = {1: _Capped(next_limit), 2: _Capped(next_limit)}
        return out, err, dropped

    def _drain(self, r: int) -> None:
        for _ in range(64):  # bounded: a writer that never stops must not hold us here
            try:
                data = os.read(r, 1 << 20)
            except OSError:  # EAGAIN: drained; EBADF: model code closed it
                return
            which = self.readers.get(r)
            if not data or which is None:
                return
            self._fold(which)
            self.streams[which].add(self.decoders[r].decode(data))

    def _drain_forever(self, watch_fd: int) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # interrupts belong to the main thread
        poller = select.poll()
        for r in self.readers:
            poller.register(r, select.POLLIN)
        hangup = getattr(select, "POLLRDHUP", 0)
        if hangup:
            poller.register(watch_fd, hangup)
        broken = select.POLLNVAL | select.POLLERR | select.POLLHUP
        while True:
            for fd, events in poller.poll():
                if fd == watch_fd:
                    os._exit(0)  # the host closed its end (it died): do not outlive it
                with self.lock:
                    self._drain(fd)
                    if events & broken:  # model code closed or replaced our pipe: stop watching it
                        poller.unregister(fd)
                        self.readers.pop(fd, None)


class _TextSink(io.TextIOBase):
    """sys.stdout / sys.stderr: text goes straight into the capped buffer."""

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, output: _Output, which: int) -> None:
        super().__init__()
        self._output = output
        self._which = which
        self._pending = output.pending[which]
        self._binary = _BinarySink(self)

    @property
    def buffer(self) -> "_BinarySink":
        return self._binary

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if type(text) is not str and not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        pending = self._pending
        pending.append(text)
        if len(pending) > 512:
            self._output.fold(self._which)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._which


class _BinarySink(io.RawIOBase):
    """sys.stdout.buffer: bytes are decoded as UTF-8, invalid bytes replaced."""

    def __init__(self, text: _TextSink) -> None:
        super().__init__()
        self._text = text
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._text.write(self._decoder.decode(bytes(data)))
        return len(data)

    def fileno(self) -> int:
        return self._text.fileno()


# -- tools ------------------------------------------------------------------------------------


class ToolCallError(Exception):
    """A tool failed on the host. `type_name` and `message` are those of the host's exception.

    When the host's type is a builtin exception (ValueError, KeyError...), the raised object is
    also an instance of it, so `except ValueError:` around a tool call works.
    """

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name = type_name
        self.message = message

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


_error_classes: dict[str, type] = {}


def _tool_error(type_name: object, message: object) -> ToolCallError:
    import builtins

    name = type_name if isinstance(type_name, str) else "Exception"
    cls = _error_classes.get(name)
    if cls is None:
        cls = ToolCallError
        base = getattr(builtins, name, None)
        if isinstance(base, type) and issubclass(base, Exception) and base is not Exception:
            try:
                cls = type("ToolCallError", (ToolCallError, base), {"__module__": "builtins"})
            except TypeError:
                pass
        _error_classes[name] = cls
    return cls(name, message if isinstance(message, str) else "")


class _Default:
    """A tool parameter's default as the model should see it; the host applies the real one."""

    __slots__ = ("text",)

    def __init__(self, text: object) -> None:
        self.text = text if isinstance(text, str) and text else "..."

    def __repr__(self) -> str:
        return self.text


class _Annotation(str):
    """An annotation kept as text (as under `from __future__ import annotations`), shown bare."""

    def __repr__(self) -> str:
        return str(self)


def _pack(posonly: tuple, poskw: tuple, varargs: tuple, kwonly: tuple, varkw: dict) -> tuple[list, dict]:
    """The call as the code made it: parameters left at their defaults are not sent."""
    args = [v for v in posonly if type(v) is not _Default]
    kwargs: dict[str, object] = {}
    if varargs:
        args.extend(v for _, v in poskw)
        args.extend(varargs)
    else:
        kwargs.update((k, v) for k, v in poskw if type(v) is not _Default)
    kwargs.update((k, v) for k, v in kwonly if type(v) is not _Default)
    kwargs.update(varkw)
    return args, kwargs


def _make_stub(spec: dict, call: object) -> object:
    """A plain function with the tool's signature and docstring that calls the host."""
    name = spec.get("name")
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"bad tool name {name!r}")
    namespace: dict = {"_pack": _pack, "_call": call, "_name": name}
    try:
        fn = _generated_stub(name, spec, namespace)
    except Exception:  # noqa: BLE001 - an odd signature still gets a working stub
        exec(
            compile(
                f"def {name}(*args, **kwargs):\n    return _call(_name, list(args), kwargs)\n", _HERE, "exec"
            ),
            namespace,
        )
        fn = namespace[name]
        fn.__doc__ = f"{spec.get('signature') or name + '(...)'}\n\n{spec.get('doc') or ''}"
        return fn
    fn.__doc__ = spec.get("doc") or None
    return fn


def _generated_stub(name: str, spec: dict, namespace: dict) -> object:
    kinds = ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD", "KEYWORD_ONLY")
    texts: dict[str, list[str]] = {k: [] for k in kinds}
    names: dict[str, list[str]] = {k: [] for k in kinds}
    annotations: dict[str, _Annotation] = {}
    varargs = varkw = None
    for i, p in enumerate(spec.get("params") or ()):
        pname, kind = p["name"], p["kind"]
        # a leading underscore could shadow the stub's own helpers (_call, _pack, _d0...)
        if not isinstance(pname, str) or not pname.isidentifier() or pname.startswith("_"):
            raise ValueError(f"bad parameter name {pname!r}")
        if isinstance(p.get("annotation"), str):
            annotations[pname] = _Annotation(p["annotation"])
        text = pname
        if p.get("has_default"):
            namespace[f"_d{i}"] = _Default(p.get("default"))
            text = f"{pname}=_d{i}"
        if kind == "VAR_POSITIONAL":
            varargs = pname
        elif kind == "VAR_KEYWORD":
            varkw = pname
        else:
            texts[kind].append(text)
            names[kind].append(pname)
    parts = (
        texts["POSITIONAL_ONLY"]
        + (["/"] if texts["POSITIONAL_ONLY"] else [])
        + texts["POSITIONAL_OR_KEYWORD"]
    )
    if varargs:
        parts.append(f"*{varargs}")
    elif texts["KEYWORD_ONLY"]:
        parts.append("*")
    parts += texts["KEYWORD_ONLY"]
    if varkw:
        parts.append(f"**{varkw}")
    if isinstance(spec.get("returns"), str):
        annotations["return"] = _Annotation(spec["returns"])
    posonly = "".join(f"{n}, " for n in names["POSITIONAL_ONLY"])
    poskw = "".join(f"({n!r}, {n}), " for n in names["POSITIONAL_OR_KEYWORD"])
    kwonly = "".join(f"({n!r}, {n}), " for n in names["KEYWORD_ONLY"])
    source = (
        f"def {name}({', '.join(parts)}):\n"
        f"    return _call(_name, *_pack(({posonly}), ({poskw}), {varargs or '()'}, ({kwonly}), {varkw or '{}'}))\n"
    )
    exec(compile(source, _HERE, "exec"), namespace)
    fn = namespace[name]
    fn.__annotations__ = annotations
    fn.__module__ = "tools"
    return fn


# -- the kernel -------------------------------------------------------------------------------


def _is_request(frame: dict) -> bool:
    return frame.get("op") in ("exec", "tools", "shutdown")


def _failure(exc: BaseException, message: str) -> dict:
    return {"type": type(exc).__name__, "message": f"{message}: {exc}"[:2000], "traceback": ""}


class _ImportGuard:
    """`authorized_imports` inside the kernel: a guard rail for model code, not a boundary.

    It wraps `builtins.__import__` and `importlib.import_module`, and checks only imports that
    model code makes itself (code compiled from a string: a `<step N>` cell, exec()...), so an allowed
    module may still import what it needs. Code that wants around it can find a way (the
    sandbox is the boundary); it is there to keep a model on the modules it was told about.
    """

    def __init__(self) -> None:
        import builtins
        import importlib

        self.allowed: tuple | None = None
        self.builtins = builtins
        self.importlib = importlib
        self.real_import = builtins.__import__
        self.real_import_module = importlib.import_module
        guard = self

        def __import__(name, globals=None, locals=None, fromlist=(), level=0):  # type: ignore[no-untyped-def]  # noqa: A002
            if guard.allowed is not None and level == 0:
                guard.check(name, sys._getframe(1))
            return guard.real_import(name, globals, locals, fromlist, level)

        def import_module(name, package=None):  # type: ignore[no-untyped-def]
            if guard.allowed is not None and isinstance(name, str) and not name.startswith("."):
                guard.check(name, sys._getframe(1))
            return guard.real_import_module(name, package)

        self.hook, self.hook_module = __import__, import_module

    def allow(self, names: object) -> None:
        """Install the hooks; `names` is the list of allowed modules, None for any."""
        if isinstance(names, list):
            self.allowed = tuple(n for n in names if isinstance(n, str))
        else:
            self.allowed = None
        self.builtins.__import__ = self.hook
        self.importlib.import_module = self.hook_module

    def check(self, name: object, caller: object) -> None:
        filename = getattr(getattr(caller, "f_code", None), "co_filename", "")
        if not filename.startswith("<") or filename.startswith("<frozen"):
            return  # a module importing its own dependencies (model code runs as `<step N>`)
        name = str(name)
        allowed = self.allowed or ()
        if any(name == a or name.startswith(a + ".") or a == "*" for a in allowed):
            return
        listed = ", ".join(sorted(allowed)) or "none"
        raise ImportError(
            f"import of '{name}' is not allowed. Allowed modules: {listed} (authorized_imports)", name=name
        )


class _FinalAnswer(BaseException):
    """Raised by final_answer() to end the action; a BaseException so `except Exception` misses it."""


class Kernel:
    """The persistent namespace and the request loop."""

    def __init__(self, fd: int) -> None:
        self.wire = _Wire(fd)
        self.output = _Output()
        self.module = type(sys)("__main__")
        self.module.__dict__["__builtins__"] = __builtins__
        self.globals = self.module.__dict__
        self.stubs: dict[str, object] = {}
        self.final_stub = self._make_final_answer()
        self.sinks = (_TextSink(self.output, 1), _TextSink(self.output, 2))
        self.main_thread = threading.get_ident()
        self.step = 0
        self.exec_id: object = None  # the host's id of the step running now; None between steps
        self.epoch: object = None  # the host's id of the run the step belongs to
        self.call_id = 0
        self.call_lock = threading.Lock()
        self.imports = _ImportGuard()
        self.limit = 20_000
        self.final: tuple | None = None
        self.in_action = False  # SIGINT raises KeyboardInterrupt only while model code runs...
        self.in_io = False  # ...and not in the middle of a frame, which would desync the bridge
        self.pending_interrupt = False
        self.interrupted = False
        self.pid = os.getpid()
        self.init = False  # pid 1 of the session's own pid namespace (the isolated sandbox)

    # The main loop ----------------------------------------------------------------------------
    def watch_threads(self) -> None:
        """Stamp each thread with the run it was started in (see `call_tool`)."""
        real_start = threading.Thread.start
        kernel = self

        def start(thread: threading.Thread) -> None:
            thread._codeact_epoch = kernel.epoch  # type: ignore[attr-defined]
            real_start(thread)

        threading.Thread.start = start  # type: ignore[method-assign, assignment]

    def serve(self) -> None:
        self.wire.send({"op": "hello", "pid": os.getpid(), "python": sys.version.split()[0]})
        while True:
            message = self.wire.wait_for(_is_request)
            op = message.get("op")
            if op == "exec":
                reply = self._run_safely(message)
                if os.getpid() != self.pid:
                    os._exit(0)  # a child the action forked ran off its end: only the kernel replies
                try:
                    self.wire.send(reply)
                except ValueError as exc:  # a final answer the host would refuse
                    reply.update(final=False, final_answer=None, error=_failure(exc, "the step's result could not be sent"))
                    self.wire.send(reply)
            elif op == "tools":
                self.set_tools(message.get("tools") or [])
            elif op == "shutdown":
                os._exit(0)

    def set_tools(self, specs: list) -> None:
        stubs = {}
        for spec in specs:
            try:
                stub = _make_stub(spec, self.call_tool)
            except Exception:  # noqa: BLE001 - the host validated tools; skip anything unusable
                continue
            stubs[spec["name"]] = stub
        for name, old in self.stubs.items():
            if self.globals.get(name) is old:
                del self.globals[name]
        self.stubs = stubs
        self.globals.update(stubs)

    # One step ---------------------------------------------------------------------------------
    def _run_safely(self, message: dict) -> dict:
        try:
            return self.run(message)
        except BaseException as exc:  # noqa: BLE001 - e.g. MemoryError in our own bookkeeping
            self.in_action = False
            self.exec_id = None
            return {
                "op": "done",
                "id": message.get("id"),
                "stdout": "",
                "stderr": "",
                "dropped": 0,
                "result": None,
                "error": _failure(exc, "the kernel failed while reporting this step"),
                "final": False,
                "final_answer": None,
                "interrupted": False,
                "duration": 0.0,
            }

    def run(self, message: dict) -> dict:
        code = message.get("code")
        limit = message.get("max_output")
        self.limit = limit if type(limit) is int and limit > 0 else 20_000
        self.step += 1
        filename = f"<step {self.step}>"
        self._prepare()
        self.imports.allow(message.get("imports"))
        result = error = None
        started = time.perf_counter()
        try:
            try:
                self.exec_id = message.get("id")
                self.epoch = message.get("epoch")
                self.in_action = True
                result = self._execute(code, filename)
            finally:
                self.in_action = False
                self.exec_id = None
        except _FinalAnswer:
            pass
        except BaseException as exc:  # noqa: BLE001 - everything the action raises is reported
            error = self._describe(exc)
        duration = time.perf_counter() - started
        stdout, stderr, dropped = self.output.take(self.limit)
        final, self.final = self.final, None
        return {
            "op": "done",
            "id": message.get("id"),
            "stdout": stdout,
            "stderr": stderr,
            "dropped": dropped,
            "result": result,
            "error": error,
            "final": final is not None,
            "final_answer": final[0] if final else None,
            "interrupted": self.interrupted,
            "duration": duration,
        }

    def _prepare(self) -> None:
        """Undo what model code may have changed last step: tools, final_answer, output, SIGINT."""
        self.globals.update(self.stubs)
        self.globals["final_answer"] = self.final_stub
        sys.stdout, sys.stderr = self.sinks
        self.output.reattach()
        signal.signal(signal.SIGINT, self._on_sigint)
        self.pending_interrupt = self.interrupted = False
        self.final = None

    def _execute(self, code: object, filename: str) -> str | None:
        import linecache

        if not isinstance(code, str):
            raise TypeError(f"code must be a string, not {type(code).__name__}")
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        flags = _ast.PyCF_ONLY_AST | getattr(_ast, "PyCF_ALLOW_TOP_LEVEL_AWAIT", 0)
        tree = compile(code, filename, "exec", flags, dont_inherit=True)
        last = None
        if tree.body and isinstance(tree.body[-1], _ast.Expr):
            last = _ast.Expression(tree.body.pop().value)
        self._eval(compile(tree, filename, "exec", flags & ~_ast.PyCF_ONLY_AST, dont_inherit=True))
        if last is None:
            return None
        value = self._eval(compile(last, filename, "eval", flags & ~_ast.PyCF_ONLY_AST, dont_inherit=True))
        if value is None:
            return None
        self.globals["_"] = value
        return truncate_middle(repr(value), self.limit)

    def _eval(self, code: object) -> object:
        if code.co_flags & _CO_COROUTINE:  # type: ignore[attr-defined]  # top-level await
            import asyncio

            return asyncio.run(eval(code, self.globals))  # type: ignore[arg-type]
        return eval(code, self.globals)  # type: ignore[arg-type]

    def _describe(self, exc: BaseException) -> dict:
        try:
            import traceback

            report = traceback.TracebackException(type(exc), exc, exc.__traceback__)
            _trim(report, set())
            text = "".join(report.format())
            try:
                message = str(exc)
            except Exception:  # noqa: BLE001
                message = "<str() of the exception failed>"
        except BaseException:  # noqa: BLE001 - formatting ran model code (__str__) that failed
            text, message = "", "<the exception could not be formatted>"
        return {
            "type": type(exc).__name__,
            "message": truncate_middle(message, self.limit),
            "traceback": truncate_middle(text, self.limit),
        }

    # Interrupts -------------------------------------------------------------------------------
    def _on_sigint(self, signum: int, frame: object) -> None:
        if not self.in_action:
            return
        if self.init and os.getpid() == self.pid:
            _stop_others()
        self.interrupted = True
        if self.in_io:
            self.pending_interrupt = True
            return
        raise KeyboardInterrupt

    # Tool calls -------------------------------------------------------------------------------
    def call_tool(self, name: str, args: list, kwargs: dict) -> object:
        exec_id = self.exec_id
        if exec_id is None:
            raise RuntimeError(
                f"{name}(): tools can only be called while a step runs "
                "(this call came from a thread that outlived its step)"
            )
        if getattr(threading.current_thread(), "_codeact_epoch", self.epoch) != self.epoch:
            raise RuntimeError(f"{name}(): this thread was started by an earlier run; it cannot call this run's tools")
        message = {
            "op": "call",
            "id": 0,
            "exec": exec_id,
            "name": name,
            "args": [to_wire(a) for a in args],
            "kwargs": {k: to_wire(v) for k, v in kwargs.items()},
        }
        with self.call_lock:
            self.call_id += 1
            message["id"] = call_id = self.call_id
        on_main = threading.get_ident() == self.main_thread
        wire = self.wire
        if on_main:
            self.in_io = True
        try:
            wire.waiting.add(call_id)  # set.add/discard are atomic: no lock needed
            wire.send(message)
            reply = wire.wait_for(lambda f: f.get("id") == call_id and f.get("op") in ("return", "raise"))
        finally:
            wire.waiting.discard(call_id)
            if on_main:
                self.in_io = False
        if on_main and self.pending_interrupt:
            self.pending_interrupt = False
            raise KeyboardInterrupt
        if reply["op"] == "raise":
            raise _tool_error(reply.get("type"), reply.get("message"))
        try:
            return from_host(reply.get("json"))
        except Exception as exc:  # noqa: BLE001 - e.g. numpy in the sandbox cannot read this dtype
            raise _tool_error(
                "TypeError", f"{name}() returned a value that cannot be rebuilt inside the sandbox ({type(exc).__name__}: {exc})"
            ) from None

    def _make_final_answer(self) -> object:
        kernel = self

        def final_answer(answer):  # type: ignore[no-untyped-def]  # the model sees this signature
            """Give the final answer to the task and stop: code after this call does not run."""
            value = to_wire(answer)
            data = json.dumps(value).encode()
            problem = scan_frame(data)
            if len(data) > MAX_KERNEL_FRAME_BYTES - (1 << 20) or problem:
                raise ValueError(
                    f"final_answer() value is too large to send ({problem or f'{len(data):,} bytes as JSON'}); "
                    "give a smaller value or a summary"
                )
            if kernel.final is None:
                kernel.final = (value,)
            raise _FinalAnswer

        final_answer.__module__ = "tools"
        return final_answer


def _trim(report: object, seen: set) -> None:
    """Drop the kernel's own frames, and everything before the action's first frame."""
    import traceback

    if report is None or id(report) in seen:
        return
    seen.add(id(report))
    frames = list(report.stack)  # type: ignore[attr-defined]
    for i, frame in enumerate(frames):
        if frame.filename.startswith("<step "):
            frames = frames[i:]
            break
    report.stack = traceback.StackSummary.from_list([f for f in frames if f.filename != _HERE])  # type: ignore[attr-defined]
    _trim(report.__cause__, seen)  # type: ignore[attr-defined]
    _trim(report.__context__, seen)  # type: ignore[attr-defined]
    for inner in getattr(report, "exceptions", None) or ():
        _trim(inner, seen)


def _stop_others(limit: float = 1.0) -> None:
    """As pid 1 of a pid namespace: SIGKILL every other process in it and reap them.

    An interrupted step must not leave a fork bomb or a busy child behind; and reaped
    processes stop counting against the session's RLIMIT_NPROC.
    """
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            os.kill(-1, signal.SIGKILL)  # everyone we may signal, except ourselves (pid 1)
        except OSError:  # ESRCH: no process left, not even a zombie
            return
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                break
        time.sleep(0.001)


def _die_with_parent() -> None:
    """PR_SET_PDEATHSIG(SIGKILL): the kernel must not outlive the host that started it."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux, or no libc: the socket hang-up watch remains
        pass


def main(argv: list[str] | None = None) -> None:
    """`kernel.py --fd N [--pdeathsig] [--init]`: serve the host on fd N until it goes away.

    `--init`: the kernel is pid 1 of its session's pid namespace (the isolated sandbox); an
    interrupted step then also stops every other process of the session.
    """
    args = sys.argv[1:] if argv is None else argv
    try:
        fd = int(args[args.index("--fd") + 1])
    except (ValueError, IndexError):
        sys.stderr.write("usage: kernel.py --fd N [--pdeathsig] [--init]\n")
        raise SystemExit(2) from None
    if "--pdeathsig" in args:
        _die_with_parent()
    here = os.path.dirname(os.path.realpath(_HERE))
    if sys.path and sys.path[0] and os.path.realpath(sys.path[0]) == here:
        sys.path[0] = ""  # model code imports from the working directory, not from codeact
    os.set_inheritable(fd, False)
    try:
        import faulthandler

        faulthandler.enable(os.dup(2))  # the host reads the original stderr after a crash
    except (ImportError, OSError, ValueError):
        pass
    kernel = Kernel(fd)
    kernel.init = "--init" in args and os.getpid() == 1
    signal.signal(signal.SIGINT, kernel._on_sigint)
    kernel.output.capture_fds(fd)
    kernel.watch_threads()
    sys.modules.setdefault("_codeact_kernel", sys.modules[__name__])  # keep our own module alive
    sys.modules["__main__"] = kernel.module  # pickling of classes the model defines works
    kernel.serve()


if __name__ == "__main__":
    main()
