"""Keeping secrets out of the run log.

Two sources, both principled rather than guessed: values we *know* are secret (environment
variables whose names say key/token/secret/password, and values tools declare in a `secrets`
attribute) are replaced wherever they appear; and the credential formats that announce
themselves are replaced even when we were not told about them: API keys with a vendor prefix
(OpenAI and Anthropic `sk-...`, GitHub `ghp_...`/`github_pat_...`, GitLab `glpat-...`, AWS
`AKIA...`, Slack `xox?-...` and webhooks, Stripe `sk_live_...`, Google `AIza...`/`ya29.`/`GOCSPX-`,
Hugging Face `hf_...`, npm, PyPI, SendGrid, DigitalOcean), JWTs, PEM and PGP private keys, the
password in a URL (`https://user:PASSWORD@host`), `Bearer`/`Basic` credentials, and values labelled
`aws_secret_access_key` or `AccountKey`. Only formats specific enough not to match ordinary
prose or code are listed (the tests hold negative cases). Short values (< 8 characters) are not
treated as secrets: they would turn ordinary words into `[REDACTED]` all over the log.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["SECRET_NAME", "Redactor"]

SECRET_NAME = re.compile(
    r"(?:^|_)(?:API_?KEY|APIKEY|KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIALS?)(?:_|$)",
    re.IGNORECASE,
)
"""Environment variable names whose values are treated as secrets."""

_MIN_SECRET = 8
_MEMO_CHARS = 2_048
_MEMO_ENTRIES = 1_024
"""Texts up to this size are remembered with their redaction, this many at most (2 MB)."""
_FORMATS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # Where a pattern has a group named `s`, only that group is the secret (the label stays).
    ("private-key", re.compile(
        r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----[\s\S]{0,20000}?"
        r"(?:-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|$)")),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*")),
    ("api-key", re.compile(r"\bsk-(?:ant-|proj-|or-)?[A-Za-z0-9][A-Za-z0-9_\-]{19,}")),
    ("github-token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})")),
    ("gitlab-token", re.compile(r"\bgl(?:pat|dt|rt|ptt)-[A-Za-z0-9_\-]{20,}")),
    ("aws-key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("aws-secret", re.compile(r"(?i)aws_secret_access_key[\"']?\s*[:=]\s*[\"']?(?P<s>[A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])")),
    ("slack-token", re.compile(r"\bx(?:ox[abposre]|app)-[A-Za-z0-9-]{10,}")),
    ("slack-webhook", re.compile(r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/\-]{20,}")),
    ("stripe-key", re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|\bwhsec_[A-Za-z0-9]{24,}")),
    ("google-key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}")),
    ("google-oauth", re.compile(r"\bya29\.[0-9A-Za-z_\-]{20,}|\bGOCSPX-[0-9A-Za-z_\-]{20,}")),
    ("huggingface-token", re.compile(r"\bhf_[A-Za-z0-9]{30,}")),
    ("npm-token", re.compile(r"\bnpm_[A-Za-z0-9]{36}\b")),
    ("pypi-token", re.compile(r"\bpypi-AgE[A-Za-z0-9_\-]{50,}")),
    ("sendgrid-key", re.compile(r"\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}\b")),
    ("digitalocean-token", re.compile(r"\bdo[por]_v1_[a-f0-9]{64}\b")),
    ("azure-key", re.compile(r"(?i)\bAccountKey=(?P<s>[A-Za-z0-9+/=]{40,})")),
    ("url-password", re.compile(r"\b[a-z][a-z0-9+.\-]{1,20}://[^/\s:@\"'<>]{1,100}:(?P<s>[^/\s@\"'<>\[\]]{3,200})@")),
    ("bearer", re.compile(r"(?<=Bearer )[A-Za-z0-9._~+/\-]{20,}=*")),
    ("basic-auth", re.compile(r"(?i)\bauthorization[\"']?\s*[:=]\s*[\"']?basic\s+(?P<s>[A-Za-z0-9+/]{16,}={0,2})")),
)
_ANCHORS = re.compile(
    r"PRIVATE KEY|eyJ|sk-|gh[pousr]_|github_pat_|gl(?:pat|dt|rt|ptt)-|AKIA|ASIA|xox|xapp-|hooks\.slack\.com|"
    r"sk_|rk_|whsec_|AIza|ya29\.|GOCSPX-|hf_|npm_|pypi-|SG\.|_v1_|://|Bearer |(?i:aws_secret|accountkey|basic)"
)
"""A literal every format above contains: most text has none, and then no format is tried."""


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
        self._memo: dict[str, str] = {}

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
        if len(value) < _MIN_SECRET:  # no secret and no format fits in fewer characters
            return value
        if len(value) <= _MEMO_CHARS:
            # A run's log repeats its texts (a reply is in its ModelReplied, its step and the
            # next request; "model_requested" is in every request): redact each once.
            found = self._memo.get(value)
            if found is None:
                if len(self._memo) >= _MEMO_ENTRIES:
                    self._memo.clear()
                found = self._memo[value] = self._redact(value)
            return found
        return self._redact(value)

    def _redact(self, value: str) -> str:
        for secret, name in self._known:
            if secret in value:
                value = value.replace(secret, f"[REDACTED:{name}]")
        if self._formats and _ANCHORS.search(value):
            for name, pattern in self._formats:
                value = pattern.sub(_replacement(name, pattern), value)
        return value

    def value(self, value: Any) -> Any:
        """A copy of a JSON-like value (dicts, lists, strings...) with every string redacted."""
        kind = type(value)
        if kind is str:
            return self.text(value)
        if value is None or kind is int or kind is float or kind is bool:
            return value
        if kind is dict and value.get(_TAG) not in ("object", "bytes"):
            return {k: self.value(v) for k, v in value.items()}
        if kind is list:
            return [self.value(v) for v in value]
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


def _replacement(name: str, pattern: re.Pattern[str]) -> str | Callable[[re.Match[str]], str]:
    marker = f"[REDACTED:{name}]"
    if "s" not in pattern.groupindex:
        return marker

    def keep_label(match: re.Match[str]) -> str:
        whole, start = match.group(0), match.start()
        return whole[: match.start("s") - start] + marker + whole[match.end("s") - start:]

    return keep_label


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
