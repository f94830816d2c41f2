"""Shared test setup: runs are logged to a throwaway directory, never the user's data dir.

Tests marked `needs_sandbox` (see `tests/_isolation.py`) fail where isolation is unavailable.
"""

import os
import tempfile

import pytest

from tests import _isolation


def pytest_configure(config: pytest.Config) -> None:
    os.environ["CODEACT_HOME"] = tempfile.mkdtemp(prefix="codeact-test-home-")
    config.addinivalue_line("markers", "needs_sandbox: runs the real isolated sandbox; fails where it cannot run")


def pytest_runtest_setup(item: pytest.Item) -> None:
    _isolation.check(item)
