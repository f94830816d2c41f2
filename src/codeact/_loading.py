"""`module:name` or `path/to/file.py:name` to the object it names, with clear errors.

Low in the layers (it needs only `codeact.errors`) so that bench task files and the CLI share it.
Loading runs the module's code: callers decide whether a spec is trusted (see `codeact.bench.tasks`).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from codeact.errors import ConfigError

__all__ = ["load_object"]


def load_object(spec: str, what: str) -> Any:
    """`package.module:name` or `path/to/file.py:name`."""
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{what} {spec!r} must look like module:name or path/to/file.py:name")
    if module_name.endswith(".py") or "/" in module_name:
        path = Path(module_name)
        if not path.is_file():
            raise ConfigError(f"{what} {spec!r}: file {path} does not exist")
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        if module_spec is None or module_spec.loader is None:
            raise ConfigError(f"{what} {spec!r}: cannot load {path}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules.setdefault(path.stem, module)
        module_spec.loader.exec_module(module)
    else:
        if str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(f"{what} {spec!r}: cannot import module {module_name!r} ({exc})") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        names = [n for n in dir(module) if not n.startswith("_")]
        raise ConfigError(f"{what} {spec!r}: module {module_name!r} has no {attr!r}; it has {names[:20]}") from None
