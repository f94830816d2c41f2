"""The code that runs *inside* the sandbox: a persistent Python namespace driven over the bridge.

Launched as `python kernel.py --fd N` with one end of a socketpair inherited as fd N, or
imported by the inner zygote and forked. It is stdlib only and imports nothing from codeact,
because it starts in a scrubbed (and possibly isolated) interpreter where start-up time
matters; its siblings hold the wire (`wire`), the values (`values`), output capture (`output`),
images shown with `display()` (`display`) and tool stubs (`stubs`).

The frames and values it exchanges with the host are described in `wire`.
"""

import _ast
import json
import os
import signal
import sys
import threading
import time

if not __package__:  # run by path (`python -I -B .../guest/kernel.py`): siblings as a private package
    sys.modules.setdefault("_codeact_guest", type(sys)("_codeact_guest")).__path__ = [  # type: ignore[attr-defined]
        os.path.dirname(os.path.abspath(__file__))
    ]
    __package__ = "_codeact_guest"

from .display import Displays  # noqa: E402
from .output import _Output, _TextSink  # noqa: E402
from .stubs import ToolCallError, _make_stub, _tool_error  # noqa: E402
from .text import truncate_middle  # noqa: E402
from .values import from_host, to_wire  # noqa: E402
from .wire import MAX_KERNEL_FRAME_BYTES, Wire, scan_frame  # noqa: E402

__all__ = ["Kernel", "ToolCallError", "main"]

_HERE = os.path.dirname((lambda: None).__code__.co_filename)
"""The guest folder: frames of its files are dropped from tracebacks shown to the model."""
_CO_COROUTINE = 0x80


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
        self.wire = Wire(fd)
        self.output = _Output()
        self.module = type(sys)("__main__")
        self.module.__dict__["__builtins__"] = __builtins__
        self.globals = self.module.__dict__
        self.stubs: dict[str, object] = {}
        self.final_stub = self._make_final_answer()
        self.displays = Displays()
        self.globals["display"] = self.displays.display
        self.globals["display_image"] = self.displays.display_image
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
                    reply.update(final=False, final_answer=None, images=[],
                                 error=_failure(exc, "the step's result could not be sent"))
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
                "images": [],
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
            "images": self.displays.take(),
        }

    def _prepare(self) -> None:
        """Undo what model code may have changed last step: tools, final_answer, output, SIGINT."""
        self.globals.update(self.stubs)
        self.globals["final_answer"] = self.final_stub
        self.globals.setdefault("display", self.displays.display)
        self.globals.setdefault("display_image", self.displays.display_image)
        self.displays.take()  # what a thread displayed between steps is not this step's
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
    report.stack = traceback.StackSummary.from_list([f for f in frames if os.path.dirname(f.filename) != _HERE])  # type: ignore[attr-defined]
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
    here = os.path.realpath(_HERE)
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
