"""Planning (`planning_interval=N`): a plan before the first step and every N steps, as events,
kept in the conversation, counted in the budget, and served from the log on replay and resume."""

from __future__ import annotations

import pytest

from codeact import CodeAgent
from codeact.agent.loop import PLAN_REQUEST
from codeact.errors import ConfigError
from codeact.events import PlanUpdated
from codeact.models import ModelReply, ScriptedModel, Usage
from codeact.runs.store import RunStore
from tests._isolation import require_sandbox


def code(src: str) -> str:
    return f"Thought: do it.\n```python\n{src}\n```"


def plan(text: str) -> ModelReply:
    return ModelReply(text, Usage(100, 7))


@require_sandbox()
def test_plans_come_first_and_every_n_steps_and_stay_in_the_conversation(tmp_path):
    model = ScriptedModel([plan("Know nothing. 1. set a 2. set b 3. answer"), code("a = 1"), code("b = 2"),
                           plan("a and b are set. Answer a + b."), code("final_answer(a + b)")])
    store = RunStore(tmp_path / "runs.db")
    agent = CodeAgent(model, planning_interval=2, store=store)
    events = list(agent.run("add two numbers", stream=True))
    result = events[-1].result
    assert result.output == 3 and len(result.steps) == 3
    plans = [e for e in events if isinstance(e, PlanUpdated)]
    assert [(p.step, p.text) for p in plans] == [(1, "Know nothing. 1. set a 2. set b 3. answer"),
                                                 (3, "a and b are set. Answer a + b.")]
    assert model.calls[0][-1].content == PLAN_REQUEST and model.calls[0][0] == model.calls[1][0]
    assert model.calls[1][-1].content == "Your plan:\nKnow nothing. 1. set a 2. set b 3. answer"
    assert model.calls[4][-1].content == "Your plan:\na and b are set. Answer a + b."
    assert result.usage.prompt_tokens >= 200  # the plans' tokens count against the budget
    logged = [e for e in store.events(result.run_id) if isinstance(e, PlanUpdated)]
    assert logged == plans
    report = CodeAgent(ScriptedModel([]), planning_interval=2, store=store).replay(result.run_id)
    assert report.divergences == () and report.result.output == 3
    store.close()


@require_sandbox()
def test_a_run_cut_short_after_a_plan_resumes_with_the_recorded_plan(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    cut = CodeAgent(ScriptedModel([plan("Set x, then answer."), code("x = 41")]), planning_interval=5,
                    store=store).run("answer 42")
    assert cut.status == "model_error"
    model = ScriptedModel([code("final_answer(x + 1)")])  # no plan: the recorded one is reused
    resumed = CodeAgent(model, planning_interval=5, store=store).resume(cut.run_id)
    assert resumed.output == 42
    assert "Your plan:\nSet x, then answer." in [m.content for m in model.calls[0]]
    assert sum(isinstance(e, PlanUpdated) for e in store.events(cut.run_id)) == 1
    store.close()


def test_planning_interval_must_be_positive():
    with pytest.raises(ConfigError):
        CodeAgent(ScriptedModel([]), planning_interval=0, store=False)


@require_sandbox()
def test_codeact_show_prints_the_plan(tmp_path):
    from tests.cli import _helpers

    store = RunStore(tmp_path / "runs.db")
    result = CodeAgent(ScriptedModel([plan("Answer \x1b[2J at once."), code("final_answer(1)")]),
                       planning_interval=3, store=store).run("one")
    store.close()
    shown = _helpers.cli(tmp_path, "show", result.run_id, "--store", str(tmp_path / "runs.db"))
    assert shown.returncode == 0, shown.stdout
    assert "plan" in shown.stdout and "Answer \\x1b[2J at once." in shown.stdout
