"""The code that runs *inside* the sandbox: a persistent Python namespace driven over the bridge.

Launched as `python kernel.py --fd N` with one end of a socketpair inherited as fd N. It is
stdlib only and imports nothing from codeact, because it starts in a scrubbed (and possibly
isolated) interpreter where start-up time matters and the codeact package may not exist.
The host imports this module too, for the wire constants and `truncate_middle`, so importing it
has no side effects.

Wire protocol: a frame is a 4-byte big-endian length, then that many bytes of UTF-8 JSON, an
object with an "op":
    kernel -> host   hello  {pid, python}
                     call   {id, name, args, kwargs}      a tool stub was called; wait for the reply
                     done   {id, stdout, stderr, result, error, final, final_answer,
                             interrupted, duration}
    host -> kernel   tools  {tools: [{name, signature, doc, params, returns}]}
                     exec   {id, code, max_output}
                     return {id, json | pickle, type, repr}    raise {id, type, message}
                     shutdown {}
Values sent to the host are JSON only, with tagged forms for tuples, sets, bytes, non-string
keys and a repr for anything else: the host never unpickles what the kernel sends. Results
coming from the host may be pickles (that direction is trusted).
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

__all__ = ["MAX_FRAME_BYTES", "TAG", "Kernel", "ToolCallError", "main", "truncate_middle"]

MAX_FRAME_BYTES = 64 * 1024 * 1024
TAG = "__codeact__"
_HERE = (lambda: None).__code__.co_filename
_CO_COROUTINE = 0x80
_REPR_LIMIT = 10_000


def truncate_middle(text: str, limit: int) -> str:
    """Keep the first and last `limit // 2` characters of `text`, with a marker in between."""
    if len(text) <= limit:
        return text
    head, tail = limit - limit // 2, limit // 2
    dropped = len(text) - head - tail
    return f"{text[:head]}\n[... {dropped:,} characters truncated ...]\n{text[len(text) - tail :]}"


# -- values sent to the host ------------------------------------------------------------------


def to_wire(value: object, depth: int = 0) -> object:
    """`value` as JSON-compatible data; what JSON cannot say is tagged, anything else is a repr."""
    t = type(value)
    if value is None or t is bool or t is int or t is float or t is str:
        return value
    if depth > 64:
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


# -- frames -----------------------------------------------------------------------------------


class _Wire:
    """Blocking frame I/O on the inherited socket, with plain os.read/os.write.

    `lock` gives one speaker at a time: the main loop while it waits for a request, or the
    thread making a tool call (model code may call tools from its own threads).
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = bytearray()
        self.lock = threading.Lock()

    def send(self, message: dict) -> None:
        data = json.dumps(message).encode()
        if len(data) > MAX_FRAME_BYTES:
            raise ValueError(f"message of {len(data):,} bytes is over the {MAX_FRAME_BYTES:,}-byte limit")
        view = memoryview(len(data).to_bytes(4, "big") + data)
        while view:
            view = view[os.write(self.fd, view) :]

    def recv(self) -> dict:
        buf = self.buf
        while True:
            if len(buf) >= 4:
                size = int.from_bytes(buf[:4], "big")
                if size > MAX_FRAME_BYTES:
                    raise ValueError(f"frame of {size:,} bytes from the host")
                if len(buf) >= 4 + size:
                    body = bytes(buf[4 : 4 + size])
                    del buf[: 4 + size]
                    return json.loads(body)
                want = 4 + size - len(buf)
            else:
                want = 4
            chunk = os.read(self.fd, max(want, 1 << 16))
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

    def take(self, next_limit: int) -> tuple[str, str]:
        """Everything written since the last take, and start the next step's buffers."""
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
            self.limit = next_limit
            self.streams = {1: _Capped(next_limit), 2: _Capped(next_limit)}
        return out, err

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
        self.call_id = 0
        self.limit = 20_000
        self.final: tuple | None = None
        self.in_action = False  # SIGINT raises KeyboardInterrupt only while model code runs...
        self.in_io = False  # ...and not in the middle of a frame, which would desync the bridge
        self.pending_interrupt = False
        self.interrupted = False
        self.pid = os.getpid()
        self.init = False  # pid 1 of the session's own pid namespace (the isolated sandbox)

    # The main loop ----------------------------------------------------------------------------
    def serve(self) -> None:
        self.wire.send({"op": "hello", "pid": os.getpid(), "python": sys.version.split()[0]})
        while True:
            with self.wire.lock:
                message = self.wire.recv()
            op = message.get("op")
            if op == "exec":
                reply = self._run_safely(message)
                if os.getpid() != self.pid:
                    os._exit(0)  # a child the action forked ran off its end: only the kernel replies
                with self.wire.lock:
                    self.wire.send(reply)
            elif op == "tools":
                self.set_tools(message.get("tools") or [])
            elif op == "shutdown":
                os._exit(0)
            # anything else (a late reply to an abandoned call) is dropped

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
            error = {
                "type": type(exc).__name__,
                "message": "the kernel failed while reporting this step",
                "traceback": "",
            }
            return {
                "op": "done",
                "id": message.get("id"),
                "stdout": "",
                "stderr": "",
                "result": None,
                "error": error,
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
        result = error = None
        started = time.perf_counter()
        try:
            try:
                self.in_action = True
                result = self._execute(code, filename)
            finally:
                self.in_action = False
        except _FinalAnswer:
            pass
        except BaseException as exc:  # noqa: BLE001 - everything the action raises is reported
            error = self._describe(exc)
        duration = time.perf_counter() - started
        stdout, stderr = self.output.take(self.limit)
        final, self.final = self.final, None
        return {
            "op": "done",
            "id": message.get("id"),
            "stdout": stdout,
            "stderr": stderr,
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
        message = {
            "op": "call",
            "id": 0,
            "name": name,
            "args": [to_wire(a) for a in args],
            "kwargs": {k: to_wire(v) for k, v in kwargs.items()},
        }
        on_main = threading.get_ident() == self.main_thread
        with self.wire.lock:
            self.call_id += 1
            message["id"] = call_id = self.call_id
            if on_main:
                self.in_io = True
            try:
                self.wire.send(message)
                while True:
                    reply = self.wire.recv()
                    if reply.get("id") == call_id and reply.get("op") in ("return", "raise"):
                        break
            finally:
                if on_main:
                    self.in_io = False
        if on_main and self.pending_interrupt:
            self.pending_interrupt = False
            raise KeyboardInterrupt
        if reply["op"] == "raise":
            raise _tool_error(reply.get("type"), reply.get("message"))
        if "pickle" not in reply:
            return reply.get("json")
        import pickle

        try:
            return pickle.loads(binascii.a2b_base64(reply["pickle"]))
        except Exception as exc:  # noqa: BLE001 - e.g. a class that exists only on the host
            raise _tool_error(
                "TypeError",
                f"{name}() returned a {reply.get('type')} that cannot be rebuilt inside the sandbox "
                f"({type(exc).__name__}: {exc}); its repr is: {reply.get('repr')}",
            ) from None

    def _make_final_answer(self) -> object:
        kernel = self

        def final_answer(answer):  # type: ignore[no-untyped-def]  # the model sees this signature
            """Give the final answer to the task and stop: code after this call does not run."""
            value = to_wire(answer)
            size = len(json.dumps(value))
            if size > MAX_FRAME_BYTES - (1 << 20):
                raise ValueError(
                    f"final_answer() value is too large to send ({size:,} bytes as JSON); "
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
    sys.modules.setdefault("_codeact_kernel", sys.modules[__name__])  # keep our own module alive
    sys.modules["__main__"] = kernel.module  # pickling of classes the model defines works
    kernel.serve()


if __name__ == "__main__":
    main()
