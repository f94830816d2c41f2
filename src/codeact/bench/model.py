"""The one model every bench config talks to: same server, temperature and reply cap for all."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from codeact.errors import ConfigError
from codeact.models._retry import Failure
from codeact.models.base import Model

__all__ = ["DEFAULT_REPLY_TOKENS", "BenchModel"]

#: The reply cap of every config unless `codeact bench --max-reply-tokens` says otherwise: room
#: for a long code action, while a small model that loops stops within a minute or two on a CPU.
DEFAULT_REPLY_TOKENS = 1024


@dataclass
class BenchModel:
    """The one model every config talks to.

    Args:
        spec: a codeact model spec, e.g. "openai-compat:http://127.0.0.1:8080/v1#qwen".
        label: a stable name for result files (a served model's port changes between runs).
        temperature: sampling temperature for every config.
        sandbox: the sandbox name for code configs ("default" or "process").
        options: more keyword options for codeact's model (e.g. `max_retries`).
        run_log: where codeact agents log their runs (a SQLite file, for `codeact runs` and
            replay); None logs nothing.
        max_tokens: the cap on every reply, for codeact's configs and the peers' alike.
        settle: for a server the bench started itself (`LocalServer.settle`): called before a
            timed-out call is retried, so the retry does not queue behind the abandoned reply.
    """

    spec: str
    label: str = ""
    temperature: float = 0.0
    sandbox: str = "default"
    options: dict[str, Any] = field(default_factory=dict)
    run_log: Path | None = None
    max_tokens: int = DEFAULT_REPLY_TOKENS
    settle: Callable[[], object] | None = None
    _model: Model | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _timeouts: threading.local = field(default_factory=threading.local, repr=False)

    def __post_init__(self) -> None:
        self.label = self.label or self.spec
        if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ConfigError(f"--max-reply-tokens must be at least 1, got {self.max_tokens!r}")

    def codeact_model(self) -> Model:
        """One shared codeact Model (an in-process model loads its weights once)."""
        with self._lock:
            if self._model is None:
                from codeact.models.registry import resolve_model

                options = {"temperature": self.temperature, "max_tokens": self.max_tokens, **self.options}
                if self.spec.startswith(("openai-compat:", "openai:")):
                    options.setdefault("before_retry", self._before_retry)
                self._model = resolve_model(self.spec, **options)
            return self._model

    def count_timeouts(self) -> int:
        """Timed-out calls made by this thread since the last call of this method."""
        count = getattr(self._timeouts, "count", 0)
        self._timeouts.count = 0
        return int(count)

    def _before_retry(self, failure: Failure) -> None:
        self._timeouts.count = getattr(self._timeouts, "count", 0) + 1
        if self.settle is not None:
            self.settle()

    def openai_endpoint(self) -> tuple[str, str, str | None]:
        """(base_url, model name, api key) for peers that speak the OpenAI API themselves."""
        prefix, _, rest = self.spec.partition(":")
        if prefix == "openai-compat" and "#" in rest:
            url, _, name = rest.rpartition("#")
            if urlsplit(url).scheme in ("http", "https"):
                return url, name, None
        if prefix == "openai" and rest:
            import os

            return os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1"), rest, None
        raise ConfigError(
            f"peer frameworks need an OpenAI-compatible server, but the model is {self.spec!r}; "
            "use --serve-local or --model openai-compat:URL#MODEL"
        )

    def store_option(self) -> Path | bool:
        """The `store=` for codeact agents: the run log file, or False (none)."""
        return self.run_log if self.run_log is not None else False

    def close(self) -> None:
        with self._lock:
            if self._model is not None:
                self._model.close()
                self._model = None
