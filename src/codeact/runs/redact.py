"""Keeping secrets out of the run log.

Two sources, both principled rather than guessed: values we *know* are secret (environment
variables whose names say key/token/secret/password, and values tools declare in a `secrets`
attribute) are replaced wherever they appear; and the few credential formats that announce
themselves (`sk-...`, `ghp_...`, `AKIA...`, `xoxb-...`, `AIza...`, `Bearer ...`) are replaced even
when we were not told about them. Short values (< 8 characters) are not treated as secrets: they
would turn ordinary words into `[REDACTED]` all over the log.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["SECRET_NAME", "Redactor"]

SECRET_NAME = re.compile(
    r"(?:^|_)(?:API_?KEY|APIKEY|KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIALS?)(?:_|$)",
    re.IGNORECASE,
)
"""Environment variable names whose values are treated as secrets."""

_MIN_SECRET = 8
_FORMATS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("api-key", re.compile(r"\bsk-(?:ant-|proj-|or-)?[A-Za-z0-9][A-Za-z0-9_\-]{19,}")),
    ("github-token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})")),
    ("aws-key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("slack-token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("google-key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}")),
    ("bearer", re.compile(r"(?<=Bearer )[A-Za-z0-9._~+/\-]{20,}=*")),
)


class Redactor:
    """Replaces secrets in strings and in nested JSON-like values.

    Args:
        secrets: name -> secret value; each value is replaced by `[REDACTED:name]`.
        formats: also replace the well-known credential formats.
    """

    def __init__(self, secrets: Mapping[str, str] | None = None, *, formats: bool = True) -> None:
        known = {value: name for name, value in (secrets or {}).items() if len(value or "") >= _MIN_SECRET}
        # Longest first, so a secret that contains another is replaced whole.
        self._known = sorted(known.items(), key=lambda item: -len(item[0]))
        self._formats = _FORMATS if formats else ()

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, *, tools: Iterable[Any] = (), formats: bool = True
    ) -> Redactor:
        """Secrets from env vars with secret-looking names and from the tools' `secrets`."""
        env = os.environ if environ is None else environ
        secrets = {name: value for name, value in env.items() if SECRET_NAME.search(name)}
        for tool in tools:
            secrets.update(_declared(tool))
        return cls(secrets, formats=formats)

    def text(self, value: str) -> str:
        for secret, name in self._known:
            if secret in value:
                value = value.replace(secret, f"[REDACTED:{name}]")
        for name, pattern in self._formats:
            value = pattern.sub(f"[REDACTED:{name}]", value)
        return value

    def value(self, value: Any) -> Any:
        """A copy of a JSON-like value (dicts, lists, strings...) with every string redacted."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            if value.get(_TAG) in ("object", "bytes"):
                return self._binary(value)
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(v) for v in value]
        return value


    def _binary(self, value: Mapping[str, Any]) -> dict[str, Any]:
        """Pickles and bytes hide their text from `text()`: look inside, and drop what leaks."""
        out = {k: self.value(v) for k, v in value.items()}
        field = "pickle" if value.get(_TAG) == "object" else "base64"
        encoded = value.get(field)
        if not isinstance(encoded, str):
            return out
        try:
            raw = base64.b64decode(encoded).decode("latin-1")
        except (binascii.Error, ValueError):
            return out
        if self.text(raw) != raw:
            del out[field]
            out.update({_TAG: "object", "type": out.get("type", "bytes"), "repr": out.get("repr") or
                        "[REDACTED: the value held a secret]"})
        return out


_TAG = "$codeact"  # codec.TAG; not imported, so the redactor stands alone


def _declared(tool: Any) -> dict[str, str]:
    """A tool's `secrets`: a mapping name -> value, or an iterable of values."""
    declared = getattr(tool, "secrets", None)
    name = getattr(tool, "name", "tool")
    if not declared:
        return {}
    if isinstance(declared, Mapping):
        return {f"{name}.{k}": str(v) for k, v in declared.items() if v}
    if isinstance(declared, str):
        return {f"{name}.secret": declared}
    return {f"{name}.secret{i}": str(v) for i, v in enumerate(declared) if v}
