"""Serving the embedded GGUF over the OpenAI API with llama-cpp-python's server, for `--serve-local`.

Every agent config (ours and the peers') must talk to the same model the same way, and peer
frameworks only speak HTTP APIs. So the benchmark starts one `python -m llama_cpp.server` on
127.0.0.1 and points every config at it. One server, one model, one request at a time: llama.cpp
reuses the KV cache of the previous request's common prefix, which is why runs are ordered agent
by agent.

The server must never outlive the benchmark, and never work on a reply nobody waits for:

- It runs in its own session (a terminal's Ctrl-C reaches the bench, which stops it in order),
  with a parent-death signal (`codeact._children`) for when the bench dies without cleaning up.
- Before a timed-out request is retried, `settle` waits until the server has stopped working on
  the abandoned reply (its CPU time stops growing), and restarts it if it does not.

Settings, measured on the 0.5B at n_ctx 8192 (2 cores): llama-cpp-python's server defaults to
`logits_all=True`, which keeps a float32 row of logits per context position: n_ctx x n_vocab
(151,936) x 4 bytes = 5 GB at n_ctx 8192, filled as prompts grow (RSS 0.73 GB idle, 3.2 GB after
one 3,000-token prompt, 6.2 GB seen in a long bench). Nothing here asks for logprobs, so it is
off: 0.87 GB after the same prompt, whose prefill also took 49 s instead of 86 s. Pings are off
(an SSE comment every 15 s would keep a stalled stream looking alive to the client's timeout), and
so is `interrupt_requests`, which ends a streaming reply early whenever another request arrives.

The server sends no token counts in streamed replies, and codeact streams (see
`codeact.models.openai_compat`). `count_prompt` counts a request's prompt the way the server
does, with the GGUF's own chat template and tokenizer (a vocabulary-only load: 0.6 s, ~100 MB),
so that the benchmark's token figures stay exact and comparable with the peers', which do not
stream (`codeact.models.gguf_tokens.PromptCounter`).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

from codeact._children import spawn
from codeact.errors import MissingExtraError, ModelConnectionError
from codeact.models.gguf_tokens import PromptCounter

__all__ = ["LocalServer"]


class LocalServer:
    """A llama-cpp-python OpenAI-compatible server on the embedded model, as a context manager.

    Args:
        size: "1.5b" or "0.5b".
        port: 0 picks a free port.
        n_ctx: context window in tokens.
        n_threads: CPU threads; default all usable cores.
        log_path: where the server's output goes; default discarded.
        startup_timeout: seconds to wait for the server to answer.
        settle_timeout: how long `settle` waits for an abandoned reply before restarting.
    """

    alias = "qwen2.5-coder"

    def __init__(
        self,
        size: str = "1.5b",
        *,
        port: int = 0,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        log_path: Path | None = None,
        startup_timeout: float = 180.0,
        settle_timeout: float = 30.0,
    ) -> None:
        self.size = size
        self.port = port or _free_port()
        self.n_ctx = n_ctx
        self.n_threads = n_threads or _usable_cpus()
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self.settle_timeout = settle_timeout
        #: How often `settle` had to restart the server.
        self.restarts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._model_path: Path | None = None
        self._lock = threading.RLock()
        self._counter: PromptCounter | None = None
        self._counter_lock = threading.Lock()  # not `_lock`: a count must not wait behind a restart

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def model_path(self) -> Path | None:
        """The GGUF file it serves, once started."""
        return self._model_path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model_spec(self) -> str:
        """The codeact model spec that points at this server."""
        return f"openai-compat:{self.url}#{self.alias}"

    def command(self, model_path: Path) -> list[str]:
        return [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(model_path),
            "--model_alias", self.alias,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--n_ctx", str(self.n_ctx),
            "--n_threads", str(self.n_threads),
            "--n_threads_batch", str(self.n_threads),
            "--logits_all", "False",  # see the module docstring
            "--disable_ping_events", "True",
            "--interrupt_requests", "False",
            "--verbose", "False",
        ]

    def start(self) -> LocalServer:
        """Assemble the weights if needed, start the server, and wait until it answers."""
        with self._lock:
            if self._process is not None:
                return self
            # Checked without importing: the server process loads them, this one does not need to.
            for module, extra in (("llama_cpp", "local"), ("uvicorn", "server"), ("fastapi", "server"),
                                  ("sse_starlette", "server"), ("starlette_context", "server"),
                                  ("pydantic_settings", "server")):
                if importlib.util.find_spec(module) is None:
                    raise MissingExtraError(module, extra, "--serve-local (llama-cpp-python's server)")
            from codeact.models._weights import ensure_weights

            self._model_path = ensure_weights(self.size)
            self._launch()
            return self

    def _launch(self) -> None:
        assert self._model_path is not None
        out: int | IO[bytes] = subprocess.DEVNULL
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            if self._log is None:
                self._log = self.log_path.open("ab")
            out = self._log
        self._process = spawn(
            self.command(self._model_path), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def count_prompt(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> int:
        """Prompt tokens of a chat request, as the server renders and tokenizes it."""
        with self._counter_lock:
            if self._counter is None:
                self._counter = PromptCounter(self._model_path or _weights(self.size))
        return self._counter(messages, tools)

    def settle(self, *_: object) -> None:
        """Before a timed-out request is retried: let the server finish or drop the abandoned
        reply (a streamed one stops at the next token once the client hung up), else restart it.

        "Finished" means its CPU time stopped growing: a generating llama.cpp keeps its threads
        busy, an idle one uses none.
        """
        with self._lock:
            process = self._process
            if process is None:
                return
            if _wait_quiet(process.pid, self.settle_timeout) and process.poll() is None:
                return
            self.restarts += 1
            self._kill()
            self._launch()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        assert self._process is not None
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                where = f"; its log is {self.log_path}" if self.log_path else ""
                raise ModelConnectionError(f"the llama.cpp server exited with status {code} while starting{where}",
                                           url=self.url)
            try:
                with urllib.request.urlopen(f"{self.url}/models", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        raise ModelConnectionError(
            f"the llama.cpp server did not answer within {self.startup_timeout:.0f} s", url=self.url
        )

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 3 s). Safe to call twice."""
        with self._lock:
            self._kill()
            if self._log is not None:
                self._log.close()
                self._log = None

    def _kill(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()  # uvicorn waits for open requests; the model keeps no state: 3 s
            try:
                process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                process.kill()
        process.wait(timeout=10)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _weights(size: str) -> Path:
    from codeact.models._weights import ensure_weights

    return ensure_weights(size)


def _cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a process so far, from /proc (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_quiet(pid: int, timeout: float, *, window: float = 1.0, busy: float = 0.2) -> bool:
    """True once the process used under `busy` cores over `window` seconds, within `timeout`."""
    deadline = time.monotonic() + timeout
    last = _cpu_seconds(pid)
    while last is not None:
        time.sleep(window)
        now = _cpu_seconds(pid)
        if now is None or now - last < busy * window:
            return True
        if time.monotonic() >= deadline:
            return False
        last = now
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
