"""Is this name or value likely a secret? For what the host shows the sandbox and the model.

Tool signatures (parameter defaults) and tool results (a record's fields) cross from the
host, which holds credentials, to the sandbox and the prompt. A name that says key, token,
secret or password, a value in a well-known credential format, and a value equal to a secret
environment variable of the host are all treated as secret and never shown.
"""

from __future__ import annotations

import os
import re

__all__ = ["REDACTED", "env_secrets", "looks_secret", "secret_name"]

REDACTED = "<redacted>"

_NAME = re.compile(
    r"(?:^|_)(?:api_?key|apikey|key|token|secret|password|passwd|passphrase|credentials?|auth|bearer|"
    r"private_?key|access_?key|session_?id|cookie)(?:_|$)",
    re.IGNORECASE,
)
_FORMATS = re.compile(
    r"sk-[A-Za-z0-9_\-]{16,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,}|(?:AKIA|ASIA)[0-9A-Z]{16}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_\-]{30,}|eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}|Bearer\s+\S{12,}"
)
_MIN_SECRET = 8


def secret_name(name: str) -> bool:
    """Whether an identifier names a credential (`api_key`, `token`, `db_password`...)."""
    return bool(_NAME.search(name))


def env_secrets() -> tuple[str, ...]:
    """The values of this process's environment variables named like credentials."""
    return tuple(v for k, v in os.environ.items() if len(v) >= _MIN_SECRET and secret_name(k))


def looks_secret(text: str, secrets: tuple[str, ...] | None = None) -> bool:
    """Whether `text` holds a credential: a known format, or a secret environment variable's value.

    Args:
        secrets: `env_secrets()`, when the caller checks many texts at once.
    """
    if _FORMATS.search(text):
        return True
    return any(value in text for value in (env_secrets() if secrets is None else secrets))
