"""Serving the embedded GGUF over the OpenAI API with llama-cpp-python's server, for `--serve-local`.

Every agent config (ours and the peers') must talk to the same model the same way, and peer
frameworks only speak HTTP APIs. So the benchmark starts one `python -m llama_cpp.server` on
127.0.0.1 and points every config at it. One server, one model, one request at a time: llama.cpp
reuses the KV cache of the previous request's common prefix, which is why runs are ordered agent
by agent.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from codeact.errors import MissingExtraError, ModelConnectionError

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
    ) -> None:
        self.size = size
        self.port = port or _free_port()
        self.n_ctx = n_ctx
        self.n_threads = n_threads or _usable_cpus()
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

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
            "--verbose", "False",
        ]

    def start(self) -> LocalServer:
        """Assemble the weights if needed, start the server, and wait until it answers."""
        if self._process is not None:
            return self
        # Checked without importing: the server process loads them, this one does not need to.
        for module, extra in (("llama_cpp", "local"), ("uvicorn", "server"), ("fastapi", "server"),
                              ("sse_starlette", "server"), ("starlette_context", "server"),
                              ("pydantic_settings", "server")):
            if importlib.util.find_spec(module) is None:
                raise MissingExtraError(module, extra, "--serve-local (llama-cpp-python's server)")
        from codeact.models._weights import ensure_weights

        model_path = ensure_weights(self.size)
        out: int | IO[bytes] = subprocess.DEVNULL
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
            out = self._log
        self._process = subprocess.Popen(
            self.command(model_path), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

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
        """Stop the server (SIGTERM, then SIGKILL after 10 s). Safe to call twice."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
