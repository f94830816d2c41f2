"""The code agent end to end with a scripted model and the real kernel process."""

import asyncio
import time

import pytest

from codeact import CodeAgent, tool
from codeact.models import ScriptedModel
from codeact.runs.events import (
    ActionParsed,
    ModelDelta,
    ModelReplied,
    Observed,
    RunFinished,
    RunStarted,
    StepFinished,
)
from codeact.sandbox.process import ProcessSandbox


def code(src: str, thought: str = "Thought: do it.") -> str:
    return f"{thought}\n```python\n{src}\n```"


def agent_for(*replies, **kwargs):
    kwargs.setdefault("sandbox", ProcessSandbox)
    return CodeAgent(ScriptedModel(list(replies)), **kwargs)


def test_state_persists_across_steps():
    agent = agent_for(code("x = 21\nimport math"), code("final_answer(x * 2 + math.floor(0.5))"))
    result = agent.run("double it")
    assert result.status == "success"
    assert result.output == 42
    assert len(result.steps) == 2


def test_tool_called_from_model_code_runs_on_host():
    host_calls = []

    @tool
    def lookup(city: str) -> dict:
        """Population of a city."""
        host_calls.append(city)
        return {"city": city, "population": 2_873_000}

    agent = agent_for(code("info = lookup('Rome')\nfinal_answer(info['population'] // 1000)"), tools=[lookup])
    result = agent.run("population of Rome in thousands")
    assert result.output == 2873
    assert host_calls == ["Rome"]
    assert [c.name for c in result.steps[0].tool_calls] == ["lookup"]


def test_reply_without_code_gets_format_hint_and_run_continues():
    model = ScriptedModel(["I think the answer is 4.", code("final_answer(4)")])
    result = CodeAgent(model, sandbox=ProcessSandbox).run("2+2")
    assert result.output == 4
    assert result.steps[0].error == "no_code"
    hint = model.calls[1][-1].content
    assert "```python" in hint and "final_answer" in hint


def test_syntax_error_becomes_observation():
    model = ScriptedModel([code("x = (1 +"), code("final_answer(1)")])
    result = CodeAgent(model, sandbox=ProcessSandbox).run("t")
    assert result.steps[0].error == "SyntaxError"
    assert "SyntaxError" in model.calls[1][-1].content
    assert result.output == 1


def test_step_limit_asks_for_a_last_answer():
    model = ScriptedModel([code("print('working')")] * 2 + [code("final_answer('best guess')")])
    result = CodeAgent(model, sandbox=ProcessSandbox, max_steps=2).run("t")
    assert result.status == "success"
    assert result.output == "best guess"
    assert "step limit" in model.calls[2][-1].content
    assert len(result.steps) == 3


def test_step_limit_without_answer_ends_cleanly():
    model = ScriptedModel([code("print('working')")] * 2 + ["I could not finish."])
    result = CodeAgent(model, sandbox=ProcessSandbox, max_steps=2).run("t")
    assert result.status == "max_steps"
    assert result.output == "I could not finish."
    assert "2 steps" in result.error


def test_final_answer_checks_can_reject():
    def positive(answer):
        return answer > 0 or "the answer must be positive"

    model = ScriptedModel([code("final_answer(-1)"), code("final_answer(5)")])
    result = CodeAgent(model, sandbox=ProcessSandbox, final_answer_checks=[positive]).run("t")
    assert result.output == 5
    assert "must be positive" in model.calls[1][-1].content


def test_stream_yields_events_in_order_and_callbacks_fire():
    seen_steps = []
    agent = agent_for(code("print('hi')"), code("final_answer('done')"), step_callbacks=[seen_steps.append])
    events = list(agent.run("t", stream=True))
    kinds = [type(e) for e in events if not isinstance(e, ModelDelta)]
    assert kinds[0] is RunStarted and kinds[-1] is RunFinished
    assert kinds[1:5] == [ModelReplied, ActionParsed, Observed, StepFinished]
    assert events[-1].result.output == "done"
    assert [s.index for s in seen_steps] == [1, 2]
    assert "hi" in seen_steps[0].observation


def test_model_failure_ends_run_with_status_and_keeps_steps():
    agent = agent_for(code("x = 1"))  # the scripted model has no second reply: ModelError
    result = agent.run("t")
    assert result.status == "model_error"
    assert "ran out of replies" in result.error
    assert len(result.steps) == 1


def test_usage_per_step_and_total():
    result = agent_for(code("a = 1"), code("final_answer(a)")).run("count")
    assert len(result.usage_per_step) == 2
    assert result.usage.total_tokens == sum(u.total_tokens for u in result.usage_per_step) > 0


def test_model_written_final_answer_definition_is_removed():
    model_code = "def final_answer(x):\n    print(x)\n\nfinal_answer(7)"
    result = agent_for(code(model_code)).run("t")
    assert result.status == "success" and result.output == 7
    assert len(result.steps) == 1


def test_an_import_of_an_own_function_from_a_made_up_module_does_not_fail_the_step():
    @tool
    def distance_km(origin: str, destination: str) -> int:
        """Distance between two cities."""
        return 2744

    model_code = "from travel_desk import distance_km\nfinal_answer(distance_km('LIS', 'OSL'))"
    result = agent_for(code(model_code), tools=[distance_km]).run("t")
    assert result.status == "success" and result.output == 2744 and len(result.steps) == 1
    assert result.steps[0].error is None


def test_a_guarded_import_keeps_the_line_numbers_of_the_models_code():
    @tool
    def distance_km(origin: str, destination: str) -> int:
        """Distance between two cities."""
        raise KeyError("no distance on file")

    model_code = "from travel_desk import distance_km\n\nkm = distance_km('NYC', 'DEL')"
    result = agent_for(code(model_code), code("final_answer(0)"), tools=[distance_km]).run("t")
    assert 'line 3' in result.steps[0].observation and "no distance on file" in result.steps[0].observation


def test_authorized_imports_refuse_others():
    model = ScriptedModel([code("import os\nfinal_answer(os.getcwd())"), code("import math\nfinal_answer(math.pi)")])
    result = CodeAgent(model, sandbox=ProcessSandbox, authorized_imports=["math"]).run("t")
    assert result.steps[0].error == "ImportError"
    assert "'os' is not allowed" in result.steps[0].observation
    assert result.output == pytest.approx(3.14159, rel=1e-4)


def test_timeout_keeps_state_through_the_agent():
    model = ScriptedModel([code("x = 5\nwhile True: pass"), code("final_answer(x)")])
    result = CodeAgent(model, sandbox=ProcessSandbox, step_timeout=0.5).run("t")
    assert result.steps[0].error == "timeout"
    assert result.output == 5


def test_passed_sandbox_is_kept_across_runs_and_not_closed():
    with ProcessSandbox() as box:
        CodeAgent(ScriptedModel([code("memo = 'kept'\nfinal_answer(1)")]), sandbox=box).run("a")
        second = CodeAgent(ScriptedModel([code("final_answer(memo)")]), sandbox=box).run("b")
        assert second.output == "kept"


def test_arun():
    result = asyncio.run(agent_for(code("final_answer(sum(range(5)))")).arun("t"))
    assert result.output == 10


def test_stream_carries_the_reply_as_model_deltas_before_it_is_complete():
    reply = code("print('hi')\nfinal_answer('done')")
    agent = agent_for(reply)
    events = list(agent.run("t", stream=True))
    deltas = [e for e in events if isinstance(e, ModelDelta)]
    replied = next(i for i, e in enumerate(events) if isinstance(e, ModelReplied))
    assert len(deltas) > 3 and all(events.index(d) < replied for d in deltas)
    assert "".join(d.text for d in deltas) == reply
    assert [d.tokens for d in deltas] == list(range(1, len(deltas) + 1))
    assert {d.step for d in deltas} == {1}
    kinds = {e["kind"] for e in agent.store.raw_events(events[-1].result.run_id)}
    assert "model_delta" not in kinds and "model_replied" in kinds  # too chatty for the log


def test_event_callbacks_get_deltas_and_a_plain_run_does_not_stream():
    seen = []
    agent_for(code("final_answer(1)"), event_callbacks=[seen.append]).run("t")
    assert any(isinstance(e, ModelDelta) for e in seen)
    model = ScriptedModel([code("final_answer(1)")])
    model.stream = None  # a plain run() must use complete(); calling this would fail
    assert CodeAgent(model, sandbox=ProcessSandbox).run("t").output == 1


def test_astream_yields_model_deltas():
    async def main():
        agent = agent_for(code("final_answer(2)"))
        return [e async for e in agent.astream("t")]

    events = asyncio.run(main())
    assert "".join(e.text for e in events if isinstance(e, ModelDelta)) == code("final_answer(2)")
    assert events[-1].result.output == 2


def test_output_printed_in_the_final_step_is_in_its_observation():
    events = list(agent_for(code("print('counted 3 files')\nfinal_answer(3)")).run("t", stream=True))
    observed = next(e for e in events if isinstance(e, Observed))
    assert "counted 3 files" in observed.observation and "Final answer: 3" in observed.observation
    assert events[-1].result.steps[-1].observation == observed.observation


def test_max_seconds_interrupts_the_step_in_progress():
    agent = agent_for(code("import time\ntime.sleep(5)"), code("final_answer(1)"), max_seconds=1, step_timeout=30)
    started = time.monotonic()
    result = agent.run("t")
    assert time.monotonic() - started < 2.5
    assert result.status == "budget_exceeded" and "time budget" in result.error
    assert result.steps[0].error == "timeout"


def test_max_seconds_bounds_a_model_call_that_does_not_return():
    def slow(messages):
        time.sleep(4)
        return code("final_answer(1)")

    for stream in (False, True):
        agent = CodeAgent(ScriptedModel([slow]), sandbox=ProcessSandbox, max_seconds=1)
        started = time.monotonic()
        events = list(agent.run("t", stream=True)) if stream else None
        result = events[-1].result if stream else agent.run("t")
        assert time.monotonic() - started < 2.5, stream
        assert result.status == "budget_exceeded" and "time budget" in result.error


def test_max_seconds_bounds_an_async_model_call():
    def slow(messages):
        time.sleep(4)
        return code("final_answer(1)")

    async def main():
        started = time.monotonic()
        result = await CodeAgent(ScriptedModel([slow]), sandbox=ProcessSandbox, max_seconds=1).arun("t")
        return result, time.monotonic() - started

    # (asyncio.run then waits for the abandoned worker thread of the default `acomplete`)
    result, seconds = asyncio.run(main())
    assert seconds < 2.5 and result.status == "budget_exceeded"


def test_the_model_is_told_its_working_directory_and_the_files_in_it(tmp_path):
    (tmp_path / "report.csv").write_text("a,b\n1,2\n")
    (tmp_path / "data").mkdir()
    for i in range(30):
        (tmp_path / f"extra{i:02}.txt").write_text("x" * i)
    (tmp_path / "evil\x1b]52;c;AAAA\x07.txt").write_text("")
    model = ScriptedModel([code("final_answer(open('report.csv').read())")])
    result = CodeAgent(model, sandbox=lambda: ProcessSandbox(workspace=tmp_path)).run("sum the csv")
    assert result.output == "a,b\n1,2\n"
    task = model.calls[0][1].content
    assert task.startswith("Task: sum the csv\n\n") and f"Your working directory is {tmp_path}." in task
    assert "- data (directory)" in task and "- extra00.txt (0 bytes)" in task
    assert "\x1b" not in task and "\\x1b]52" in task  # a hostile file name is shown escaped
    assert task.count("\n- ") == 21 and "... and 13 more" in task  # 20 entries, then a count


def test_a_huge_print_is_reported_to_the_model_with_its_real_size():
    result = agent_for(code("print('x' * 5_000_000)"), code("final_answer(1)")).run("t")
    observation = result.steps[0].observation
    assert "5,000,001 characters of output in all" in observation
    assert len(observation) <= 8_000


def test_an_empty_workspace_adds_nothing_to_the_task(tmp_path):
    model = ScriptedModel([code("final_answer(1)")])
    CodeAgent(model, sandbox=lambda: ProcessSandbox(workspace=tmp_path)).run("t")
    assert model.calls[0][1].content == "Task: t"


def test_authorized_imports_hold_for_dunder_import_too():
    model = ScriptedModel([code("m = __import__('os')\nprint(m.getcwd())"), code("import math\nfinal_answer(math.floor(2.5))")])
    result = CodeAgent(model, sandbox=ProcessSandbox, authorized_imports=["math"]).run("t")
    assert result.steps[0].error == "ImportError" and "not allowed" in result.steps[0].observation
    assert result.output == 2


def test_both_drivers_end_an_interrupted_model_call_as_interrupted():
    def interrupted(messages):
        raise KeyboardInterrupt

    result = CodeAgent(ScriptedModel([interrupted]), sandbox=ProcessSandbox).run("t")
    assert result.status == "interrupted"

    async def main():
        return await CodeAgent(ScriptedModel([interrupted]), sandbox=ProcessSandbox).arun("t")

    assert asyncio.run(main()).status == "interrupted"


def test_a_huge_final_answer_is_shown_cut_in_the_observation_and_whole_in_the_result():
    result = agent_for(code("final_answer('a' * 1_000_000)")).run("t")
    assert result.output == "a" * 1_000_000
    assert len(result.steps[-1].observation) < 10_000 and "characters truncated" in result.steps[-1].observation


def test_each_tool_call_is_reported_once_to_the_stream_and_the_log(tmp_path):
    from codeact.runs import RunStore

    @tool
    def double(x: int) -> int:
        """Twice x."""
        return 2 * x

    store = RunStore(tmp_path / "runs.db")
    agent = agent_for(code("a = double(1)\nb = double(2)"), code("final_answer(a + b)"), tools=[double], store=store)
    events = list(agent.run("t", stream=True))
    kinds = [e.kind for e in events]
    assert kinds.count("tool_called") == 2
    assert kinds.index("tool_called") < kinds.index("observed")  # the calls come before the step's observation
    run_id = events[-1].result.run_id
    assert [e.kind for e in store.events(run_id)].count("tool_called") == 2


def test_reply_cut_at_the_length_cap_is_told_to_the_model():
    from codeact.agent.loop import CUT_NOTE
    from codeact.models.base import ModelReply, Usage

    cut = ModelReply(code("total = sum(range(10))\nprint(total)\nx = (1 +"), Usage(5, 9), finish_reason="length")
    whole = ModelReply(code("print('ok')"), Usage(5, 4), finish_reason="stop")
    model = ScriptedModel([cut, whole, code("final_answer(1)")])
    result = CodeAgent(model, sandbox=ProcessSandbox).run("t")
    assert result.output == 1
    assert CUT_NOTE in model.calls[1][-1].content  # after the cut reply
    assert CUT_NOTE not in model.calls[2][-1].content  # not after a whole one
    assert CUT_NOTE in result.steps[0].observation


def test_reply_cut_without_code_is_told_to_the_model():
    from codeact.agent.loop import CUT_NOTE
    from codeact.models.base import ModelReply, Usage

    model = ScriptedModel([ModelReply("Thought: first I will explain at length", Usage(5, 7), finish_reason="length"),
                           code("final_answer(2)")])
    result = CodeAgent(model, sandbox=ProcessSandbox).run("t")
    assert result.output == 2
    assert CUT_NOTE in model.calls[1][-1].content


def test_a_tool_name_rebound_to_its_result_works_and_the_tool_is_back_next_step():
    @tool
    def lookup(city: str) -> dict:
        """Population of a city."""
        return {"city": city, "population": 2_873_000}

    agent = agent_for(code("lookup = lookup('Rome')\nprint(lookup['population'])"),
                      code("final_answer(lookup('Oslo')['city'])"), tools=[lookup])
    result = agent.run("t")
    assert "2873000" in result.steps[0].observation, result.steps[0].observation
    assert "removed" not in result.steps[0].observation
    assert result.output == "Oslo"


def test_a_reply_ends_where_its_first_block_closes_and_the_history_shows_it_closed():
    # What small models do: a good block, then the system prompt's example and tool defs restated.
    rambling = code("x = 6 * 7\nprint(x)") + "\n\nExample\n```python\nfinal_answer(count * 3)\n```\n```python\ndef final_answer("
    model = ScriptedModel([rambling, code("final_answer(x)")])
    result = CodeAgent(model, sandbox=ProcessSandbox).run("t")
    assert result.output == 42
    assert result.steps[0].code == "x = 6 * 7\nprint(x)"  # nothing after the first block ran
    assert result.steps[0].observation.strip().endswith("42")
    replied = model.calls[1][-2]
    assert replied.role == "assistant"
    assert replied.content == code("x = 6 * 7\nprint(x)")  # the fence the stop kept out is back


def test_stop_after_block_off_runs_every_block_of_a_reply():
    two = code("a = 1") + "\n" + code("b = a + 1\nfinal_answer(b)")
    assert CodeAgent(ScriptedModel([two]), sandbox=ProcessSandbox, stop_after_block=False).run("t").output == 2
    stopped = CodeAgent(ScriptedModel([two, code("final_answer(a)")]), sandbox=ProcessSandbox).run("t")
    assert stopped.output == 1 and len(stopped.steps) == 2


def test_closed_reply_puts_back_only_a_fence_the_stop_removed():
    from codeact.agent.code_agent import closed_reply
    from codeact.models.base import ModelReply

    open_block = "Thought: t\n```python\nprint(1)"
    assert closed_reply(ModelReply(open_block, finish_reason="stop")) == open_block + "\n```"
    assert closed_reply(ModelReply(open_block + "\n", finish_reason=None)) == open_block + "\n```"
    assert closed_reply(ModelReply(open_block, finish_reason="length")) == open_block  # a real cut stays visible
    assert closed_reply(ModelReply(code("print(1)"), finish_reason="stop")) == code("print(1)")
    assert closed_reply(ModelReply("Thought: no code at all", finish_reason="stop")) == "Thought: no code at all"


@tool
def fare(flight: str) -> float:
    """The fare of a flight.

    Args:
        flight: e.g. "TP1204".
    """
    return 120.5


@pytest.mark.parametrize(
    ("src", "says"),
    [
        ("# Your code here", "held only comments"),  # the 1.5B's copy of the prompt's placeholder
        ('def fare(flight):\n    """The fare."""\n    pass', "only defined fare, which you already have"),
        ("def final_answer(answer):\n    print(answer)\npass", "only defined final_answer"),
    ],
)
def test_code_that_would_run_nothing_is_sent_back_with_why(src, says):
    agent = agent_for(code(src), code('final_answer(fare("TP1204"))'), tools=[fare])
    result = agent.run("What does TP1204 cost?")
    assert result.status == "success" and result.output == 120.5
    first = result.steps[0]
    assert first.error == "no_code" and first.code is None and first.tool_calls == ()
    assert first.observation.startswith("Nothing ran: ") and says in first.observation
    assert first.observation in agent.model.calls[1][-1].content  # the model is told, not just the log


def test_a_step_with_statements_besides_a_removed_definition_still_runs():
    agent = agent_for(code("def fare(flight):\n    return 1\nx = fare('TP1204')\nfinal_answer(x)"), tools=[fare])
    result = agent.run("What does TP1204 cost?")
    assert result.output == 120.5 and result.steps[0].error is None


def test_an_answer_stated_in_words_after_output_is_taken():
    agent = agent_for(code("print(10.5)"), "The result is 10.5 hours.\n\nFinal answer: 10.5")
    result = agent.run("How many hours ahead of New York is Delhi?")
    assert result.status == "success" and result.output == 10.5 and len(result.steps) == 2
    answered = result.steps[1]
    assert answered.code == "final_answer(10.5)" and answered.is_final and answered.error is None


@pytest.mark.parametrize(
    "first",
    [
        None,  # the first reply: nothing seen yet, a guess
        code("x = 1"),  # a step that printed nothing
        code("1 / 0"),  # a step that failed
    ],
)
def test_an_answer_stated_in_words_without_output_seen_is_sent_back(first):
    replies = ([first] if first else []) + ["Final answer: 7", code("final_answer(8)")]
    result = agent_for(*replies).run("What is it?")
    assert result.status == "success" and result.output == 8
    stated = result.steps[-2]
    assert stated.code is None and stated.error == "no_code"


def test_a_reply_in_words_before_any_tool_call_is_told_it_would_be_a_guess():
    guessed = "The office checksum of 'hello' is 10."
    agent = agent_for(guessed, code("print(fare('TP1204'))"), guessed, code("final_answer(120.5)"), tools=[fare])
    result = agent.run("What does TP1204 cost?")
    assert result.output == 120.5
    before, after = result.steps[0], result.steps[2]
    assert before.error == after.error == "no_code"
    assert "none of your functions has been called yet" in before.observation
    assert before.observation in agent.model.calls[1][-1].content  # the model is told
    assert "none of your functions" not in after.observation  # a function ran: the usual hint
    assert "final_answer(...)" in after.observation


def test_an_agent_without_tools_gets_the_usual_hint_for_a_reply_in_words():
    model = ScriptedModel(["The answer is 4.", code("final_answer(4)")])
    result = CodeAgent(model, sandbox=ProcessSandbox).run("2+2")
    assert "none of your functions" not in result.steps[0].observation
    assert "final_answer(...)" in result.steps[0].observation


def test_a_reply_in_words_right_after_output_is_shown_that_output_to_answer_from():
    agent = agent_for(code("print(fare('TP1204'))"), "The fare of TP1204 is 99.", "Still 99.",
                      code("final_answer(120.5)"), tools=[fare])
    result = agent.run("What does TP1204 cost?")
    assert result.output == 120.5
    right_after, later = result.steps[1], result.steps[2]
    assert "An answer in words is not taken" in right_after.observation
    assert "The output your code printed last was:\n120.5\n" in right_after.observation
    assert right_after.observation in agent.model.calls[2][-1].content  # the model is told
    assert "printed last" not in later.observation  # once, right after the output: then the usual hint


@pytest.mark.parametrize("before", [code("1 / 0"), code("x = 1")])
def test_a_reply_in_words_after_a_failing_or_silent_step_gets_the_usual_hint(before):
    result = agent_for(code("print(fare('TP1204'))"), before, "It is 99.", code("final_answer(1)"),
                       tools=[fare]).run("What does TP1204 cost?")
    assert "printed last" not in result.steps[2].observation
    assert "final_answer(...)" in result.steps[2].observation


def test_the_output_quoted_back_is_cut_to_a_bounded_size():
    agent = agent_for(code("print('x' * 50_000)"), "Done, it is long.", code("final_answer(1)"))
    result = agent.run("print a lot")
    quoted = result.steps[1].observation
    assert "printed last" in quoted and len(quoted) < 1_500
    assert "characters truncated ...]" in quoted
