"""Shared test setup: runs are logged to a throwaway directory, never the user's data dir."""

import os
import tempfile

import pytest


def pytest_configure(config: pytest.Config) -> None:
    os.environ["CODEACT_HOME"] = tempfile.mkdtemp(prefix="codeact-test-home-")
