"""Lazy imports of optional backends, with an install hint when they are missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from codeact.errors import MissingExtraError

__all__ = ["require"]


def require(module: str, *, extra: str, feature: str) -> ModuleType:
    """Import `module`, or raise MissingExtraError naming `pip install 'codeact[extra]'`."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module.split(".")[0], extra, feature) from exc
