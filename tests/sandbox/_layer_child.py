"""Run a snippet in a fresh Python child that loads a sandbox layer module by path.

The layers are irreversible, so every test applies them in a child process. Loading the module
by file path (as the guest entry scripts do inside the sandbox) keeps each child fast: importing the
`codeact` package would pull in the whole framework.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import codeact.sandbox

__all__ = ["GUEST_DIR", "run_child"]

GUEST_DIR = Path(codeact.sandbox.__file__).resolve().parent / "guest"

_PRELUDE = f"""
import importlib.util, json, sys
def load(name):
    spec = importlib.util.spec_from_file_location("_layer_" + name, {str(GUEST_DIR)!r} + "/" + name + ".py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
def report(**values):
    print(json.dumps(values))
"""


def run_child(code: str, *args: str, timeout: float = 30, **popen: Any) -> dict[str, Any]:
    """Run `code` (which calls `report(...)` once) and return what it reported.

    Fails the test with the child's stderr if it exits non-zero or reports nothing.
    """
    done = subprocess.run(
        [sys.executable, "-I", "-c", _PRELUDE + code, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        **popen,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, f"child failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    result: dict[str, Any] = json.loads(lines[-1])
    return result
