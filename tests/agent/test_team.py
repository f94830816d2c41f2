"""Teams (`agents=[...]`): members are host tools of the manager's code, run in their own sandbox,
report their answer, spend from the manager's budgets, and are logged as child runs."""

from __future__ import annotations

import threading
import time

import pytest

from codeact import CodeAgent, tool
from codeact.agent.team import Member
from codeact.errors import ConfigError
from codeact.models import ModelReply, ScriptedModel, Usage
from codeact.runs.store import RunStore
from tests._isolation import require_sandbox


def code(src: str, usage: Usage | None = None) -> ModelReply:
    return ModelReply(f"Thought: do it.\n```python\n{src}\n```", usage or Usage(50, 10))


@tool
def stock_of(sku: str) -> int:
    """Units in stock.

    Args:
        sku: the product's SKU.
    """
    return {"KB-1": 7, "MS-2": 5}[sku]


spans: list[tuple[str, float, float]] = []
_spans_lock = threading.Lock()


@tool
def slow_lookup(key: str) -> str:
    """A lookup that takes a second.

    Args:
        key: what to look up.
    """
    started = time.monotonic()
    time.sleep(1.5)
    with _spans_lock:
        spans.append((key, started, time.monotonic()))
    return key.upper()


def test_a_member_needs_a_name_and_a_description():
    with pytest.raises(ConfigError, match="name and a description"):
        CodeAgent(ScriptedModel([]), agents=[CodeAgent(ScriptedModel([]), store=False)], store=False)
    member = CodeAgent(ScriptedModel([]), name="stock_of", description="Stock.", store=False)
    with pytest.raises(ConfigError, match="both named 'stock_of'"):
        CodeAgent(ScriptedModel([]), [stock_of], agents=[member], store=False)


def test_the_manager_prompt_shows_the_member_as_a_function():
    clerk = CodeAgent(ScriptedModel([]), [stock_of], name="clerk", description="Knows the stock of every SKU.",
                      store=False)
    manager = CodeAgent(ScriptedModel([]), agents=[clerk], store=False)
    prompt = manager._format().system_prompt()
    assert "clerk(task: str) -> str" in prompt and "Knows the stock of every SKU." in prompt
    assert "stock_of" not in prompt  # the member's tools are its own
    assert manager.tools["clerk"].concurrent


@require_sandbox()
def test_the_manager_calls_a_member_and_gets_its_answer(tmp_path):
    clerk_model = ScriptedModel([code("n = stock_of('KB-1') + stock_of('MS-2')\nfinal_answer(n)", Usage(300, 20))])
    clerk = CodeAgent(clerk_model, [stock_of], name="clerk", description="Knows the stock of every SKU.")
    boss_model = ScriptedModel([
        code("answer = clerk('How many KB-1 and MS-2 together?')\nprint(repr(answer))", Usage(100, 10)),
        code("final_answer(int(answer) * 2)", Usage(120, 5)),
    ])
    store = RunStore(tmp_path / "runs.db")
    manager = CodeAgent(boss_model, agents=[clerk], store=store, max_tokens=10_000)
    result = manager.run("Twice the stock of KB-1 and MS-2")
    assert result.status == "success" and result.output == 24
    first = result.steps[0]
    assert "'12'" in first.observation  # the member's answer, as text
    assert "[clerk: success after 1 step(s), 320 tokens; called stock_of×2; run " in first.observation
    assert [c.name for c in first.tool_calls] == ["clerk"] and first.tool_calls[0].result == "12"
    # the member's tokens count in the manager's usage
    assert result.usage == Usage(100 + 300 + 120, 10 + 20 + 5)
    children = [r for r in store.runs(limit=None) if r.meta.get("parent_run") == result.run_id]
    assert len(children) == 1
    child = children[0]
    assert child.meta["parent_step"] == 1 and child.meta["member"] == "clerk" and child.status == "success"
    assert child.prompt_tokens == 300
    assert "parent_run" not in clerk.run_meta  # the member's own settings are given back
    assert clerk.store is not store
    store.close()


@require_sandbox()
def test_members_spend_from_the_manager_token_budget(tmp_path):
    # The member's own budget is 100k tokens; the manager has 1,000 left in all, so the member's
    # run is capped there, and the manager's run ends once the member's tokens are counted.
    greedy = ScriptedModel([code("x = 1", Usage(700, 10)), code("final_answer(x)", Usage(700, 10))])
    member = CodeAgent(greedy, name="greedy", description="Spends a lot.", max_tokens=100_000)
    boss = ScriptedModel([code("print(greedy('go'))", Usage(100, 10)), code("final_answer(1)")])
    manager = CodeAgent(boss, agents=[member], store=RunStore(tmp_path / "runs.db"), max_tokens=1_000)
    result = manager.run("spend")
    assert result.status == "budget_exceeded" and "token budget" in result.error
    assert "greedy ended without an answer (budget_exceeded" in result.steps[0].observation
    assert result.usage.total_tokens == 110 + 710  # the member stopped at its cap (890 left for it)
    assert member.budget.max_tokens == 100_000


@require_sandbox()
def test_two_members_run_at_the_same_time_from_threads_in_the_manager_code(tmp_path):
    spans.clear()
    members = [
        CodeAgent(ScriptedModel([code(f"final_answer(slow_lookup('{key}'))")]), [slow_lookup], name=name,
                  description=f"Looks up {key}.")
        for name, key in (("left", "a"), ("right", "b"))
    ]
    boss = ScriptedModel([
        code("from concurrent.futures import ThreadPoolExecutor\n"
             "with ThreadPoolExecutor(2) as pool:\n"
             "    fa, fb = pool.submit(left, 'a'), pool.submit(right, 'b')\n"
             "final_answer(fa.result() + fb.result())"),
    ])
    store = RunStore(tmp_path / "runs.db")
    manager = CodeAgent(boss, agents=members, store=store, step_timeout=60)
    result = manager.run("both")
    assert result.output == "AB"
    (_, a0, a1), (_, b0, b1) = sorted(spans)
    assert a0 < b1 and b0 < a1  # the two member runs overlapped in time
    assert sorted(c.name for c in result.steps[0].tool_calls) == ["left", "right"]
    children = [r for r in store.runs(limit=None) if r.meta.get("parent_run") == result.run_id]
    assert sorted(r.meta["member"] for r in children) == ["left", "right"]
    assert all(r.status == "success" for r in children)
    store.close()


@require_sandbox()
def test_a_member_wrapped_in_member_and_a_failure_is_an_error_for_the_code(tmp_path):
    quiet = CodeAgent(ScriptedModel([code("x = 1")]), max_steps=1)  # never answers
    boss = ScriptedModel([code("try:\n    helper('go')\nexcept Exception as e:\n    final_answer(str(e))")])
    manager = CodeAgent(boss, agents=[Member(quiet, "helper", "Helps.")], store=RunStore(tmp_path / "r.db"))
    output = manager.run("try").output
    assert output.startswith("MemberFailed: helper ended without an answer (model_error")


def test_a_tool_calling_manager_calls_members_by_json_and_counts_their_tokens():
    from codeact.agent.tool_calling_agent import ToolCallingAgent

    clerk = CodeAgent(ScriptedModel([code("final_answer(stock_of('KB-1'))", Usage(30, 5))]), [stock_of],
                      name="clerk", description="Knows the stock of every SKU.", store=False)
    calls = ['{"name": "clerk", "arguments": {"task": "stock of KB-1?"}}',
             '{"name": "final_answer", "arguments": {"answer": "7 units"}}']
    boss = ScriptedModel([ModelReply(f"```json\n{c}\n```", Usage(10, 2)) for c in calls])
    result = ToolCallingAgent(boss, agents=[clerk], tool_mode="text", store=False).run("stock?")
    assert result.output == "7 units"
    assert result.steps[0].tool_calls[0].result == "7"
    assert result.usage == Usage(10 + 30 + 10, 2 + 5 + 2)


@tool
def nap(seconds: float) -> str:
    """Sleep, then say so.

    Args:
        seconds: how long.
    """
    time.sleep(seconds)
    return "rested"


@require_sandbox()
def test_a_member_outliving_the_manager_step_is_cut_at_the_step_end(tmp_path):
    sleepy = CodeAgent(ScriptedModel([code("final_answer(nap(4))"), code("final_answer('late')")]), [nap],
                       name="sleepy", description="Takes its time.")
    boss = ScriptedModel([code("print(sleepy('rest'))"), code("final_answer('moved on')")])
    store = RunStore(tmp_path / "runs.db")
    manager = CodeAgent(boss, agents=[sleepy], store=store, step_timeout=1.5)
    started = time.monotonic()
    result = manager.run("rest, then go on")
    assert result.output == "moved on" and time.monotonic() - started < 20
    first = result.steps[0]
    assert first.error == "timeout" and "[sleepy: budget_exceeded after 1 step(s)" in first.observation
    assert first.tool_calls[0].name == "sleepy" and first.tool_calls[0].error.startswith("MemberFailed")
    (child,) = store.children(result.run_id)
    assert child.status == "budget_exceeded"  # its time was what was left of the manager's step
    store.close()


@require_sandbox()
def test_a_concurrent_call_still_running_when_the_step_ends_is_answered_and_the_bridge_stays_clean():
    from codeact.sandbox import default_sandbox
    from codeact.tools.tool import FunctionTool

    slow = FunctionTool(nap.function, name="slow")
    slow.concurrent = True
    with default_sandbox() as sandbox:
        sandbox.start({"slow": slow})
        started = time.monotonic()
        run = sandbox.execute("import threading\nout = []\n"
                              "def work():\n    try:\n        out.append(slow(2))\n"
                              "    except Exception as e:\n        out.append(str(e))\n"
                              "t = threading.Thread(target=work)\nt.start()\nimport time\ntime.sleep(0.3)\n'left'")
        assert run.ok and run.result == "'left'" and time.monotonic() - started < 1.9
        (record,) = run.tool_calls
        assert record.name == "slow" and "still running when the step ended" in record.error
        after = sandbox.execute("t.join(5)\nout[0]", timeout=10)
        assert "TimeoutError" in after.result and "still running when the step ended" in after.result
        time.sleep(2)  # the abandoned call returns on the host now: its reply must not reach the bridge
        again = sandbox.execute("slow(0.1)", timeout=10)
        assert again.ok and again.result == "'rested'" and len(again.tool_calls) == 1
