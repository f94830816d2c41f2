"""End to end: the real embedded model writes code that the real default sandbox runs.

In CI (CI=true) a missing model is a failure, not a skip: this is the proof that the
README's first command works.
"""

from __future__ import annotations

import pytest

from codeact import CodeAgent, tool

# Generous: on a loaded 2-core machine the first prompt alone can take minutes.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

def test_local_model_solves_a_real_task_through_the_kernel(small_model):
    result = CodeAgent(small_model, max_steps=4).run("What is the sum of the primes below 100?")
    assert result.status == "success", result.steps
    assert int(result.output) == 1060
    assert result.steps[-1].code and "final_answer" in result.steps[-1].code
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0


def test_local_model_calls_a_host_tool(small_model):
    calls = []

    @tool
    def get_temperature(city: str) -> int:
        """Current temperature in a city, in degrees Celsius."""
        calls.append(city)
        return {"Paris": 18, "Rome": 24}.get(city, 0)

    result = CodeAgent(small_model, tools=[get_temperature], max_steps=4).run(
        "What is the temperature in Rome right now, in degrees Celsius? Use get_temperature."
    )
    assert result.status == "success", result.steps
    assert "Rome" in calls
    assert int(result.output) == 24


def test_local_model_follow_up_turn_uses_the_same_kernel(small_model):
    """A conversation (issue 11): the second turn reads a variable the first turn defined."""
    with CodeAgent(small_model, max_steps=4, store=False).chat() as chat:
        first = chat.send("Create a Python list named nums holding 3, 1 and 2, then call final_answer(len(nums)).")
        assert first.status == "success", first.steps
        second = chat.send("Now return the sum of the list nums you created before.")
    assert second.status == "success", second.steps
    assert int(second.output) == 6
