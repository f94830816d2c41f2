"""Opt-in step techniques (agent.techniques) through the real loop, a scripted model and a real kernel."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from codeact import CodeAgent, tool
from codeact.agent.techniques import (
    DoubtGiveUp,
    ErrorContext,
    RepeatGuard,
    VerifyBeforeAnswer,
    prompt_variant,
)
from codeact.errors import ConfigError
from codeact.models import ScriptedModel
from codeact.runs.result import RunResult
from codeact.sandbox.process import ProcessSandbox

if TYPE_CHECKING:
    from codeact.models.openai_compat import OpenAICompatible


def code(src: str) -> str:
    return f"Thought: go.\n```python\n{src}\n```"


@tool
def get_rate(currency: str) -> float:
    """Units of a currency per 1 EUR."""
    return {"USD": 1.08, "NOK": 11.6}[currency]


@tool
def get_order(order_id: str) -> dict:
    """One order."""
    return {"order_id": order_id, "lines": [{"sku": "TL-07", "quantity": 3}]}


def run(replies: list[str], *techniques: object, tools: list = (), task: str = "task") -> tuple[object, ScriptedModel]:  # type: ignore[assignment]
    model = ScriptedModel(replies)
    agent = CodeAgent(model, list(tools), sandbox=ProcessSandbox, store=False, max_steps=4,
                      techniques=techniques)  # type: ignore[arg-type]
    return agent.run(task), model


def test_repeat_guard_names_a_repeated_failing_action_and_stays_quiet_otherwise() -> None:
    failing = code("x = {'a': 1}\nprint(x['b'])")
    reformatted = code("# try again\nx = {'a': 1}\n\nprint(x['b'])")
    result, model = run([failing, reformatted, code("final_answer(1)")], RepeatGuard())

    assert result.output == 1
    first, second = result.steps[0].observation, result.steps[1].observation
    assert "KeyError" in first and "Note:" not in first
    assert "same code as an earlier step" in second and "KeyError: 'b'" in second
    assert "same code as an earlier step" in model.calls[2][-1].content  # the model read it


def test_repeat_guard_speaks_when_different_code_keeps_hitting_the_same_error() -> None:
    result, _ = run([code("int('x')"), code("y = 2\nint('x')"), code("final_answer(2)")], RepeatGuard())
    assert "Note:" not in result.steps[0].observation
    assert "the same error has now happened 2 times" in result.steps[1].observation


def test_without_techniques_a_repeat_gets_no_note() -> None:
    failing = code("print({}['b'])")
    result, _ = run([failing, failing, code("final_answer(3)")])
    assert all("Note:" not in s.observation for s in result.steps)


def test_verify_sends_a_blind_answer_back_once_and_the_kernel_keeps_its_values() -> None:
    blind = code("r = get_rate('NOK')\nfinal_answer(round(100 * r, 2))")
    again = code("print(r)\nfinal_answer(round(100 * r, 2))")
    task = "What are 100 EUR in NOK? Round to 2 decimals."
    result, model = run([blind, again], VerifyBeforeAnswer(), tools=[get_rate], task=task)

    assert result.status == "success" and result.output == 1160.0
    assert len(result.steps) == 2
    rejected = result.steps[0].observation
    assert "final answer was rejected" in rejected and "compare it with the task" in rejected
    # the task, what the tools returned and the answer, side by side
    assert f'The task: "{task}"' in rejected and "{task}" not in rejected
    assert "get_rate(currency='NOK') returned 11.6" in rejected and "Your answer: 1160.0" in rejected
    assert rejected in model.calls[1][-1].content  # the model read it
    assert "11.6" in result.steps[1].observation


def test_the_task_quoted_in_a_review_is_bounded_and_sandbox_text_cannot_multiply_it() -> None:
    blind = code("get_rate('USD')\nfinal_answer('{task}' * 3)")
    result, _ = run([blind, blind], VerifyBeforeAnswer(), tools=[get_rate], task="x" * 5_000)
    rejected = result.steps[0].observation
    assert "characters truncated" in rejected
    assert len(rejected) < 3_000  # the task cut in the middle, quoted once
    assert rejected.count("{task}") == 3  # the answer's own text is not filled in
    assert result.output == "{task}" * 3


def test_verify_accepts_an_answer_after_output_was_seen_and_a_pure_computation() -> None:
    looked, _ = run([code("print(get_rate('USD'))"), code("final_answer(1.08)")], VerifyBeforeAnswer(),
                    tools=[get_rate])
    pure, _ = run([code("final_answer(6 * 7)")], VerifyBeforeAnswer())
    assert looked.output == 1.08 and len(looked.steps) == 2
    assert pure.output == 42 and len(pure.steps) == 1


def test_verify_asks_only_once_per_run() -> None:
    blind = code("final_answer(get_rate('USD'))")
    result, _ = run([code("x = 1"), blind, blind], VerifyBeforeAnswer(), tools=[get_rate])
    # the first step showed nothing ("ran without output"), so the answer in step 2 is blind
    assert result.output == 1.08 and len(result.steps) == 3
    assert "get_rate(currency='USD') returned 1.08" in result.steps[1].observation  # the values to check


def test_prompt_variants_render_the_tools_and_say_what_they_change() -> None:
    tools_first = CodeAgent(ScriptedModel([]), [get_rate], sandbox=ProcessSandbox, store=False,
                            prompt_template=prompt_variant("tools-first"))
    example = CodeAgent(ScriptedModel([]), [get_rate], sandbox=ProcessSandbox, store=False,
                        prompt_template=prompt_variant("tool-example"))
    first = tools_first._format().system_prompt()
    assert first.index("def get_rate") < first.index("Work in steps")
    shown = example._format().system_prompt()
    assert 'get_city_facts("Lisbon")' in shown and "def get_rate" in shown and "never invent" in shown
    units = CodeAgent(ScriptedModel([]), [get_rate], sandbox=ProcessSandbox, store=False,
                      prompt_template=prompt_variant("units"))._format().system_prompt()
    assert "convert them to what the task asks" in units and "def get_rate" in units
    example_only = CodeAgent(ScriptedModel([]), [get_rate], sandbox=ProcessSandbox, store=False,
                             prompt_template=prompt_variant("example-only"))._format().system_prompt()
    assert "# your code" not in example_only and "# your code" in CodeAgent(
        ScriptedModel([]), [get_rate], sandbox=ProcessSandbox, store=False)._format().system_prompt()
    assert "def get_rate" in example_only and 'final_answer(count * 3)' in example_only
    with pytest.raises(ConfigError, match="tool-example"):
        prompt_variant("nope")


def test_repeat_guard_tells_a_model_that_reprints_its_result_to_answer_with_it() -> None:
    show = code("print(6 * 7)")
    result, _ = run([show, show, code("final_answer(42)")], RepeatGuard())
    assert "Note:" not in result.steps[0].observation
    assert "call final_answer with the value now" in result.steps[1].observation and result.output == 42


def test_the_compact_variant_lists_each_tool_on_one_line_without_a_def_to_copy() -> None:
    agent = CodeAgent(ScriptedModel([]), [get_rate], sandbox=ProcessSandbox, store=False,
                      prompt_template=prompt_variant("tools-compact"))
    system = agent._format().system_prompt()
    assert "- get_rate(currency: str) -> float: Units of a currency per 1 EUR." in system
    assert "def get_rate" not in system and "{tool_lines}" not in system


def test_require_tool_use_sends_back_an_answer_made_up_without_tools_once() -> None:
    from codeact.agent.techniques import RequireToolUse

    invented = code("cost = 100 * 5\nfinal_answer(cost)")
    result, model = run([invented, code("final_answer(get_rate('NOK') * 5)")], RequireToolUse(), tools=[get_rate])
    assert result.output == 58.0 and len(result.steps) == 2
    assert "no tool has been called" in model.calls[1][-1].content

    stubborn, _ = run([invented, invented], RequireToolUse(), tools=[get_rate])
    assert stubborn.output == 500 and len(stubborn.steps) == 2  # asked once, then let through
    used, _ = run([code("r = get_rate('USD')"), code("final_answer(r)")], RequireToolUse(), tools=[get_rate])
    assert used.output == 1.08 and len(used.steps) == 2


def test_require_tool_use_notes_once_a_step_that_types_out_data_before_any_tool_call() -> None:
    from codeact.agent.techniques import RequireToolUse

    typed = code("rates = {'NOK': 11.0, 'USD': 1.1}")
    result, model = run([typed, code("x = 1"), code("final_answer(get_rate('NOK'))")], RequireToolUse(),
                        tools=[get_rate])
    assert result.output == 11.6
    assert "no tool has been called yet" in result.steps[0].observation
    assert "no tool has been called yet" not in result.steps[1].observation  # said once
    assert "no tool has been called yet" in model.calls[1][-1].content
    quiet, _ = run([code("r = get_rate('USD')"), code("x = 1"), code("final_answer(r)")], RequireToolUse(),
                   tools=[get_rate])
    assert all("Note:" not in s.observation for s in quiet.steps)


def run_hot(replies: list[str], max_steps: int) -> tuple[RunResult, list[float | None], OpenAICompatible]:
    """A run with RepeatGuard(temperature=0.7) against a real chat server: the result, the
    temperature each request asked for, and the model."""
    from codeact.models.openai_compat import OpenAICompatible
    from tests.servers.chat_server import ChatServer, chat

    with ChatServer() as server:
        server.push(*(chat(reply) for reply in replies))
        model = OpenAICompatible("m", base_url=server.url, temperature=0.0)
        agent = CodeAgent(model, sandbox=ProcessSandbox, store=False, max_steps=max_steps,
                          techniques=[RepeatGuard(temperature=0.7)])
        result = agent.run("task")
        return result, [request.json.get("temperature") for request in server.requests], model


def test_repeat_guard_with_a_temperature_samples_only_the_next_reply_hotter() -> None:
    failing = code("x = {'a': 1}\nprint(x['b'])")
    result, sent, model = run_hot([failing, failing, code("print('other')"), code("final_answer(5)")], 4)

    assert result.output == 5
    assert sent == [0.0, 0.0, 0.7, 0.0]  # hot only right after the repeat; the model itself is unchanged
    assert model.temperature == 0.0


def test_repeat_guard_with_a_temperature_samples_after_a_second_reply_without_code() -> None:
    words = "The checksum of 'hello' is 10."
    result, sent, _ = run_hot([code("print(2)"), words, words, words, code("final_answer(5)")], 5)

    assert result.output == 5
    steps = result.steps
    assert [s.error for s in steps] == [None, "no_code", "no_code", "no_code", None]
    assert sent == [0.0, 0.0, 0.0, 0.7, 0.7]  # the first reply in words is only told; each repeat is sampled
    assert all("Note:" not in s.observation for s in steps[1:4])  # the no-code hint says it already


def test_repeat_guard_without_a_temperature_leaves_replies_without_code_alone() -> None:
    words = "The checksum of 'hello' is 10."
    result, model = run([words, words, code("final_answer(1)")], RepeatGuard())
    assert result.output == 1
    assert result.steps[0].observation == result.steps[1].observation  # the hint, nothing added
    assert model.calls[2][-1].content.endswith(result.steps[1].observation)
    assert RepeatGuard().review_reply(result.steps[:2]) is None
    assert RepeatGuard(temperature=0.7).review_reply(result.steps[:2]) is not None


def test_at_temperature_copies_a_model_that_has_one_and_leaves_others_alone() -> None:
    from codeact.models.openai_compat import OpenAICompatible

    model = OpenAICompatible("m", base_url="http://127.0.0.1:9/v1", temperature=0.0)
    hot = model.at_temperature(0.9)
    assert hot is not model and hot.temperature == 0.9 and model.temperature == 0.0
    assert model.at_temperature(0.0) is model
    scripted = ScriptedModel([])
    assert scripted.at_temperature(0.9) is scripted


def test_error_context_shows_the_real_keys_after_a_guessed_one() -> None:
    guessed = code("order = get_order('O-1')\nfinal_answer(order['weight_kg'])")
    fixed = code("final_answer(order['lines'][0]['quantity'])")
    result, model = run([guessed, fixed], ErrorContext(), tools=[get_order])

    assert result.output == 3
    seen = result.steps[0].observation
    assert "KeyError: 'weight_kg'" in seen
    assert "get_order(order_id='O-1') returned {'order_id': 'O-1', 'lines': [{'sku': 'TL-07', 'quantity': 3}]}" in seen
    assert "{'sku': 'TL-07'" in model.calls[1][-1].content  # the model reads it in its next prompt


def test_error_context_says_nothing_after_success_or_a_failure_without_tools() -> None:
    ok, _ = run([code("print(get_order('O-1')['order_id'])"), code("final_answer(1)")], ErrorContext(),
                tools=[get_order])
    silent, _ = run([code("o = get_order('O-1')\nif o['order_id'] == 'O-2':\n    print(o)"), code("final_answer(1)")],
                    ErrorContext(), tools=[get_order])
    assert "printed nothing" in silent.steps[0].observation and "'sku': 'TL-07'" in silent.steps[0].observation
    no_tools, _ = run([code("{}['x']"), code("final_answer(2)")], ErrorContext(), tools=[get_order])
    assert "Note:" not in ok.steps[0].observation
    assert "KeyError" in no_tools.steps[0].observation and "Note:" not in no_tools.steps[0].observation


def test_error_context_says_the_tools_need_no_import() -> None:
    made_up = code("import travel_desk\nfinal_answer(travel_desk.get_rate('USD'))")  # `from` imports are guarded
    result, _ = run([made_up, code("final_answer(get_rate('USD'))")], ErrorContext(), tools=[get_rate])
    seen = result.steps[0].observation
    assert "ModuleNotFoundError" in seen and "already defined in this session" in seen and "returned" not in seen
    assert result.output == 1.08


def test_error_context_tells_a_made_up_function_from_a_variable_never_set() -> None:
    invented = code("r = get_currency_rate('USD')")
    lost = code("x = get_rate('USD')\nboom()\ny = 2")
    result, _ = run([invented, lost, code("print(y)"), code("final_answer(x)")], ErrorContext(), tools=[get_rate])
    assert "get_currency_rate() is not one of your functions" in result.steps[0].observation
    assert "boom() is not one of your functions" in result.steps[1].observation
    assert "get_rate(currency='USD') returned 1.08" in result.steps[1].observation
    assert "y was never set" in result.steps[2].observation and result.output == 1.08


def test_error_context_leaves_a_failed_call_to_the_traceback() -> None:
    result, _ = run([code("a = get_rate('USD')\nb = get_rate('XXX')"), code("final_answer(a)")], ErrorContext(),
                    tools=[get_rate])
    seen = result.steps[0].observation
    assert "get_rate(currency='USD') returned 1.08" in seen and "get_rate(currency='XXX') returned" not in seen
    assert seen.count("KeyError") == 1


def test_doubt_give_up_sends_a_not_found_answer_back_once_with_what_the_tools_returned() -> None:
    guarded = code("o = get_order('O-1')\nfinal_answer(o.get('weight_kg', 'Order O-1 not found or has no weight.'))")
    again = code("final_answer('No weight found for O-1.')")
    result, _ = run([guarded, again], DoubtGiveUp(), tools=[get_order])
    first = result.steps[0].observation
    assert "says something was not found or failed" in first and "'quantity': 3" in first
    assert result.output == "No weight found for O-1." and len(result.steps) == 2  # the second goes through


@pytest.mark.parametrize("said", ["Order O-5003 not found or does not have a weight.",
                                  "Error: Order does not have a 'weight_kg' field.",
                                  "No flights available from Zurich to Berlin.", "No open orders found."])
def test_doubt_give_up_knows_the_give_ups_the_1_5b_answered(said: str) -> None:
    result, _ = run([code(f"final_answer({said!r})"), code("final_answer(1)")], DoubtGiveUp())
    assert result.output == 1 and "not found or failed" in result.steps[0].observation


def test_doubt_give_up_lets_ordinary_answers_through() -> None:
    for answer in ("'meet at the north gate'", "'no'", "'Seefeld House'", "42", "['O-5002', 'O-5008']"):
        result, _ = run([code(f"final_answer({answer})")], DoubtGiveUp())
        assert len(result.steps) == 1 and result.status == "success", answer


def test_repeat_guard_showing_calls_answers_a_repeated_failure_with_a_block_to_copy() -> None:
    guessed = code("order = get_order('O-1')\nprint(order['lines'][0]['item'])")
    result, model = run([guessed, guessed, code("print(get_order(order_id='O-1'))"), code("final_answer(3)")],
                        RepeatGuard(show_calls=True), tools=[get_order])

    assert result.output == 3
    first, second = result.steps[0].observation, result.steps[1].observation
    assert "KeyError: 'item'" in first and "same code" not in first
    # The repeat is not shown its traceback again: it is told so, with a print of the call it made.
    assert second.startswith("This is the same code as an earlier step, and it failed the same way (KeyError: 'item')")
    assert "Traceback" not in second
    assert "write a ```python block with only\nprint(get_order(order_id='O-1'))\n" in second
    assert model.calls[2][-1].content.endswith(second)


def test_repeat_guard_showing_calls_takes_an_earlier_steps_calls_and_falls_back_to_the_note() -> None:
    broken = code("x = get_order('O-1')\nprint(x['lines'][0]['item'] for")  # a SyntaxError: no call runs
    result, _ = run([code("x = get_order('O-1')\nprint(x['sku'])"), broken, broken, code("final_answer(1)")],
                    RepeatGuard(show_calls=True), tools=[get_order])
    assert "SyntaxError" in result.steps[1].observation and "same code" not in result.steps[1].observation
    assert "print(get_order(order_id='O-1'))" in result.steps[2].observation  # step 1's call

    no_tools, _ = run([code("print({}['b'])"), code("print({}['b'])"), code("final_answer(2)")],
                      RepeatGuard(show_calls=True))
    assert "Note: this is the same code as an earlier step" in no_tools.steps[1].observation
    assert "KeyError" in no_tools.steps[1].observation  # nothing to print: the traceback and the note, as before


def test_a_replacement_observation_from_a_technique_is_what_the_model_reads() -> None:
    from codeact.agent.techniques.base import Review, review_step

    class Replace:
        def review(self, steps: object, code: object, execution: object) -> Review:
            return Review(note="n", observation="only this")

    merged = review_step([Replace(), RepeatGuard()], [], None, None)  # type: ignore[list-item, arg-type]
    assert merged.observation == "only this" and merged.note == "n"
    result, model = run([code("print(1)"), code("final_answer(1)")], Replace())
    assert result.steps[0].observation == "only this\nn"
    assert model.calls[1][-1].content.endswith("only this\nn")
    assert result.output == 1  # a final answer's step keeps its own observation
