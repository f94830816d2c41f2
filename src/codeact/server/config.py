"""What a server runs with: its models, tools, sandbox, users and limits, as objects.

The CLI (`codeact serve`) turns strings into this; the app only reads it. A client picks a model
by name from `models` and nothing else: a client-chosen model spec could point an
OpenAI-compatible client holding the host's API key at any URL, so the list is the server's.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from codeact.errors import ConfigError
from codeact.models.base import Model
from codeact.tools.tool import Tool

__all__ = ["Limits", "ServerConfig", "Users", "shared_model"]

ModelFactory = Callable[[], Model]


def shared_model(factory: ModelFactory) -> ModelFactory:
    """`factory`, called once and its model reused: for a model that is costly to load (the
    embedded one serializes its calls anyway) or a thread-safe client."""
    return functools.cache(factory)


@dataclass(frozen=True)
class Limits:
    """What one server holds at most; past a limit a request is refused (413, 429), never queued
    without end."""

    max_runs: int = 8
    """Runs going at once (all users together); a new run past it is refused with 429."""
    max_runs_per_user: int = 4
    max_request_bytes: int = 16 * 2**20
    """The largest request body (a run's task with its files, one upload)."""
    max_file_bytes: int = 8 * 2**20
    """The largest file uploaded or downloaded."""
    max_workspace_files: int = 1_000
    """Files listed from a workspace at most."""
    max_steps: int = 50
    """The largest step budget a client may ask for."""
    max_task_chars: int = 20_000
    max_streams: int = 256
    """Event streams open at once (all users together)."""
    max_approval_seconds: float = 600.0
    """How long a tool call waits for a person's answer; then it is denied."""


class Users:
    """Tokens and the user each one is. Tokens are compared in constant time; a user's runs are
    visible to that user only."""

    def __init__(self, tokens: Mapping[str, str]) -> None:
        for token, user in tokens.items():
            if len(token) < 8:
                raise ConfigError(f"the token of user {user!r} is shorter than 8 characters; use a long random one")
        self._by_digest = {hashlib.sha256(t.encode()).digest(): u for t, u in tokens.items()}

    @classmethod
    def parse(cls, entries: Sequence[str]) -> Users:
        """`NAME:TOKEN` or a bare `TOKEN` (the user is then named after the token's hash)."""
        tokens: dict[str, str] = {}
        for entry in entries:
            entry = entry.strip()
            if not entry or entry.startswith("#"):
                continue
            name, sep, token = entry.partition(":")
            if not sep:
                name, token = "user-" + hashlib.sha256(entry.encode()).hexdigest()[:8], entry
            if not name or not token:
                raise ConfigError(f"a token entry must be NAME:TOKEN or TOKEN, got one starting {entry[:4]!r}...")
            tokens[token] = name
        return cls(tokens)

    @classmethod
    def from_file(cls, path: Path) -> Users:
        """One `NAME:TOKEN` (or `TOKEN`) a line; `#` starts a comment line."""
        try:
            return cls.parse(path.read_text(encoding="utf-8").splitlines())
        except OSError as exc:
            raise ConfigError(f"cannot read the tokens file {str(path)!r}: {exc}") from exc

    def user(self, token: str) -> str | None:
        """The user holding `token`, or None."""
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        found = None
        for known, user in self._by_digest.items():  # every entry compared, in constant time
            if hmac.compare_digest(known, digest):
                found = user
        return found

    def __len__(self) -> int:
        return len(self._by_digest)


@dataclass(frozen=True)
class ServerConfig:
    """Everything a server runs with.

    Args:
        models: name -> factory of the models clients may choose (called per run; wrap a costly
            one in `shared_model`).
        default_model: the name a run gets when it names none.
        users: who may call the API.
        tools: the tools every run's code may call.
        sandbox: `default`/`local` (isolated) or `process` (no isolation).
        step_timeout: seconds one code step may run.
        data_dir: where run workspaces live (one directory per run).
        store: the run log (a path; None for codeact's default file).
        limits: what the server holds at most.
    """

    models: Mapping[str, ModelFactory]
    default_model: str
    users: Users
    data_dir: Path
    tools: Sequence[Tool] = ()
    sandbox: str = "default"
    step_timeout: float = 30.0
    store: Path | str | None = None
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        if self.default_model not in self.models:
            raise ConfigError(f"the default model {self.default_model!r} is not among the allowed ones: "
                              f"{', '.join(self.models) or 'none'}")
