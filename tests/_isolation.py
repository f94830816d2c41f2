"""Tests that need the isolated sandbox fail, never skip, where it cannot run.

A machine without working isolation (no bwrap, user namespaces off) used to skip ~90 sandbox
and security tests and stay green. Now such a test fails with what `codeact doctor` would say;
set CODEACT_TESTS_ALLOW_NO_SANDBOX=1 to skip them instead (a developer machine without it, on
purpose). Mark a test or module with `require_sandbox()`; `tests/conftest.py` does the rest.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

__all__ = ["OPT_OUT", "check", "fail_or_skip", "require_sandbox", "runtime_entries", "unavailable_reason"]

OPT_OUT = "CODEACT_TESTS_ALLOW_NO_SANDBOX"


def require_sandbox() -> pytest.MarkDecorator:
    """The marker for tests that run model code in the real isolated sandbox."""
    return pytest.mark.needs_sandbox


def unavailable_reason() -> str | None:
    """Why the isolated sandbox cannot run here (None when it can)."""
    from codeact.sandbox.probe import probe

    report = probe()
    if report.usable:
        return None
    return (
        "this machine cannot run the isolated sandbox ("
        + "; ".join(report.missing)
        + "). Run `codeact doctor` to see why; set "
        + f"{OPT_OUT}=1 to skip these tests instead of failing"
    )


def fail_or_skip(reason: str) -> None:
    """Inside a test: fail with `reason` (or skip, opted out) where the sandbox cannot be exercised."""
    if os.environ.get(OPT_OUT) == "1":
        pytest.skip(reason)
    pytest.fail(f"{reason}. Run `codeact doctor`; set {OPT_OUT}=1 to skip instead", pytrace=False)


def check(item: pytest.Item) -> None:
    """Fail (or, opted out, skip) a `needs_sandbox` test where isolation is unavailable."""
    if item.get_closest_marker("needs_sandbox") is None:
        return
    reason = unavailable_reason()
    if reason is None:
        return
    if os.environ.get(OPT_OUT) == "1":
        pytest.skip(reason)
    pytest.fail(reason, pytrace=False)


def runtime_entries(directory: Path) -> set[str]:
    """Names in `directory` on the way to what every session binds (codeact's package, the venv).

    A session may see these names (a checkout under /tmp is bound into the session's private
    /tmp, so /tmp shows its top folder), and nothing else of the host around them.
    """
    import codeact

    names: set[str] = set()
    for bound in (Path(codeact.__file__).resolve().parent, Path(sys.prefix).resolve()):
        try:
            names.add(bound.relative_to(directory.resolve()).parts[0])
        except (ValueError, IndexError):
            pass
    return names
