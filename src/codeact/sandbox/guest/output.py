"""Output capture in the kernel: stdout and stderr of the process and its children, bounded.

The kernel's fds 1 and 2 become pipes drained by a thread, so output written by C code and
subprocesses is caught too; each step keeps a head and a tail of bounded size.
"""

import codecs
import io
import os
import select
import signal
import sys
import threading

from .text import cut_marker

__all__: list[str] = []


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
        return head + cut_marker(dropped) + tail


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
