"""Running the CLI as a user does: a subprocess with its own run log, talking to a real HTTP server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from codeact.cli import _register, app

REPO = Path(__file__).resolve().parents[2]
_register()


def env_for(home: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "CODEACT_HOME": str(home), "COLUMNS": "200"}
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(name, None)
    env.update(extra)
    return env


def codeact(home: Path, *args: str, timeout: float = 90, **env: str) -> subprocess.CompletedProcess:
    """`codeact ARGS` in a subprocess; stdout and stderr as text (bytes that are not UTF-8 fail the test)."""
    return subprocess.run([sys.executable, "-m", "codeact", *args], capture_output=True, text=True,
                          encoding="utf-8", errors="strict", timeout=timeout, env=env_for(home, **env),
                          cwd=REPO, check=False)


def cli(home: Path, *args: str, columns: int = 200) -> Any:
    """In-process, for the commands that only read the log (a subprocess costs ~1.5 s here)."""
    result = CliRunner().invoke(app, list(args), env={"CODEACT_HOME": str(home), "COLUMNS": str(columns)})
    result.returncode = result.exit_code
    return result


def fenced(code: str, thought: str = "Next.") -> str:
    return f"Thought: {thought}\n```python\n{code}\n```"


def no_control(text: str) -> bool:
    """No character that could drive a terminal: C0 but newline and tab, DEL, C1, bidi, surrogates."""
    return not any((ord(c) < 0x20 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F or 0xD800 <= ord(c) <= 0xDFFF
                   or c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069" for c in text)
