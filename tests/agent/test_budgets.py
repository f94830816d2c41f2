"""Budgets end a run with a clear status and the partial answer, never an exception."""

import time

import pytest

from codeact import CodeAgent
from codeact.errors import ConfigError
from codeact.models import ScriptedModel
from codeact.models.base import ModelReply, Usage
from codeact.runs.events import BudgetHit, RunFinished
from codeact.runs.pricing import Price, PriceTable, load_prices
from codeact.sandbox.process import ProcessSandbox


def code(src):
    return f"Thought: step.\n```python\n{src}\n```"


def priced(text, prompt=1000, completion=100):
    return ModelReply(text, Usage(prompt, completion))


def test_token_budget_ends_with_status_and_partial_answer():
    model = ScriptedModel([priced(code("x = 41\nx + 1")), priced(code("x * 2")), priced(code("final_answer(1)"))])
    agent = CodeAgent(model, sandbox=ProcessSandbox, max_tokens=2_000)
    events = list(agent.run("t", stream=True))
    result = events[-1].result
    assert result.status == "budget_exceeded"
    assert "token budget exhausted" in result.error and "2,200" in result.error
    assert result.output == "82"  # the last value the code produced
    hit = next(e for e in events if isinstance(e, BudgetHit))
    assert (hit.budget, hit.limit, hit.used) == ("tokens", 2_000, 2_200)
    assert isinstance(events[-1], RunFinished)


def test_token_budget_stops_before_a_prompt_that_cannot_fit():
    model = ScriptedModel([code("print('x' * 4000)"), code("final_answer(1)")])
    result = CodeAgent(model, sandbox=ProcessSandbox, max_tokens=900, compaction=None).run("t")
    assert result.status == "budget_exceeded"
    assert "next prompt" in result.error
    assert len(model.calls) == 1  # the second, too-large call was never made


def test_cost_budget_uses_the_price_table_and_overrides():
    replies = [priced(code("print(1)"), 10_000, 1_000)] * 5
    agent = CodeAgent(ScriptedModel(replies, name="openai:gpt-4o"), sandbox=ProcessSandbox, max_cost=0.05)
    result = agent.run("t")  # $0.035 per step at gpt-4o's $2.50/$10 per million
    assert result.status == "budget_exceeded" and len(result.steps) == 2
    assert "$0.0700 of $0.05" in result.error

    cheap = CodeAgent(ScriptedModel(replies, name="openai:gpt-4o"), sandbox=ProcessSandbox, max_cost=0.05,
                      prices={"gpt-4o": (0.5, 1.0)}, max_steps=3)
    assert cheap.run("t").status == "max_steps"


def test_cost_budget_without_a_price_is_a_config_error():
    with pytest.raises(ConfigError, match="prices="):
        CodeAgent(ScriptedModel([], name="openai-compat:http://h#mystery"), sandbox=ProcessSandbox, max_cost=1.0)


def test_time_budget():
    def slow(messages):
        time.sleep(0.3)
        return code("print('tick')")

    started = time.monotonic()
    result = CodeAgent(ScriptedModel([slow] * 5), sandbox=ProcessSandbox, max_seconds=0.5).run("t")
    assert result.status == "budget_exceeded" and "time budget" in result.error
    # The second model call would end past the deadline: it is cut there, not waited for.
    assert len(result.steps) == 1 and result.output == "tick"
    assert time.monotonic() - started < 0.55 + 0.5


def test_bad_budgets_are_config_errors():
    with pytest.raises(ConfigError, match="max_tokens"):
        CodeAgent(ScriptedModel([]), sandbox=ProcessSandbox, max_tokens=0)


def test_price_lookup():
    table = PriceTable({"my-model": (1, 2)})
    assert table.price("openai:gpt-4o-mini-2024-07-18") == Price(0.15, 0.60)
    assert table.price("anthropic:claude-sonnet-4-20250514") == Price(3.0, 15.0)
    assert table.price("openai-compat:http://localhost:8080/v1#my-model") == Price(1, 2)
    assert table.price("local:qwen2.5-coder-1.5b") == Price(0, 0)
    assert table.price("local-small") == Price(0, 0)
    assert table.price("unknown") is None
    assert table.cost("gpt-4o", Usage(1_000_000, 100_000)) == pytest.approx(3.5)
    with pytest.raises(ConfigError):
        PriceTable({"x": (-1, 2)})


def test_prices_from_a_file(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text('{"mine": [1.5, 3], "theirs": {"input": 2, "output": 4}}')
    assert load_prices(path) == {"mine": Price(1.5, 3.0), "theirs": Price(2.0, 4.0)}
    path.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="JSON object"):
        load_prices(path)
