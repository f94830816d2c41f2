"""The tool-calling agent: JSON reading, host tool calls, concurrency, and a real chat server."""

from __future__ import annotations

import json
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codeact import tool
from codeact.agent._json_actions import ParsedCalls, ParseFailure, parse_tool_calls
from codeact.agent.tool_calling_agent import HELD_ANSWER, ToolCallingAgent
from codeact.models import ModelReply, ScriptedModel, ToolCall
from codeact.models.openai_compat import OpenAICompatible
from codeact.runs.events import ToolCalled
from tests.servers.chat_server import ChatServer, chat


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: first number.
        b: second number.
    """
    return a + b


@tool
def search(query: str) -> list:
    """Search the catalogue.

    Args:
        query: what to look for.
    """
    return [query.upper()]


def calls_of(text):
    parsed = parse_tool_calls(text)
    assert isinstance(parsed, ParsedCalls), parsed
    return [(c.name, c.arguments) for c in parsed.calls]


# -- reading JSON from text --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        'Thought: add.\n```json\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n```',
        '{"name": "add", "arguments": {"a": 1, "b": 2}}',
        'I\'ll add them: {"tool": "add", "args": {"a": 1, "b": 2}} and that\'s it.',
        '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>',
        '{"name": "add", "arguments": "{\\"a\\": 1, \\"b\\": 2}"}',
        '{"function": {"name": "add", "arguments": {"a": 1, "b": 2}}}',
        '{"action": "add", "action_input": {"a": 1, "b": 2}}',
        "{'name': 'add', 'arguments': {'a': 1, 'b': 2}}",
        '{"name": "add", "arguments": {"a": 1, "b": 2}',  # last brace forgotten
        "```\n{\"name\": \"add\", \"parameters\": {\"a\": 1, \"b\": 2}}\n```",
    ],
)
def test_one_call_in_any_common_shape(text):
    assert calls_of(text) == [("add", {"a": 1, "b": 2})]


def test_several_calls_as_a_list_as_blocks_or_under_tool_calls():
    expected = [("add", {"a": 1, "b": 2}), ("search", {"query": "x"})]
    listed = '[{"name": "add", "arguments": {"a": 1, "b": 2}}, {"name": "search", "arguments": {"query": "x"}}]'
    blocks = ('```json\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n```\nthen\n'
              '```json\n{"name": "search", "arguments": {"query": "x"}}\n```')
    wrapped = '{"tool_calls": ' + listed + "}"
    assert calls_of(listed) == expected
    assert calls_of(blocks) == expected
    assert calls_of(wrapped) == expected


def test_thought_is_the_prose_before_the_first_call():
    parsed = parse_tool_calls('Thought: I need the sum.\n```json\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n```')
    assert isinstance(parsed, ParsedCalls)
    assert parsed.thought == "Thought: I need the sum."


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("The answer is 42.", "No tool call found"),
        ('{"name": "add", "arguments": {"a": 1, "b": tru}}', "invalid JSON"),
        ('{"answer": 42}', 'no "name"'),
        ('{"name": "add", "arguments": {"a": [1, 2}}', "not complete"),
    ],
)
def test_malformed_replies_get_a_message_naming_the_problem(text, says):
    parsed = parse_tool_calls(text)
    assert isinstance(parsed, ParseFailure)
    assert says in parsed.message
    assert '"name": "final_answer"' in parsed.message  # and an example of what to write


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from('{}[]"\':,\\ \nabc123`<>/name'), max_size=80))
def test_reader_never_raises(text):
    assert isinstance(parse_tool_calls(text), (ParsedCalls, ParseFailure))


# -- the agent ------------------------------------------------------------------------------------


def json_reply(*calls):
    body = [{"name": n, "arguments": a} for n, a in calls]
    return "Thought: go.\n```json\n" + json.dumps(body if len(body) > 1 else body[0]) + "\n```"


def test_text_mode_runs_tools_and_finishes():
    model = ScriptedModel([json_reply(("add", {"a": 2, "b": 3})), json_reply(("final_answer", {"answer": 5}))])
    result = ToolCallingAgent(model, [add], tool_mode="text").run("2+3")
    assert result.status == "success" and result.output == 5
    assert [c.name for c in result.steps[0].tool_calls] == ["add"]
    assert result.steps[0].tool_calls[0].result == 5
    second_call = model.calls[1]
    assert second_call[-1].role == "user" and second_call[-1].content == "Observation:\n5"
    assert "def add(a: int, b: int) -> int" in second_call[0].content


def test_malformed_json_becomes_an_observation_and_the_run_goes_on():
    model = ScriptedModel(['{"name": "add", "arguments": {"a": 1 "b": 2}}', json_reply(("final_answer", {"answer": 3}))])
    result = ToolCallingAgent(model, [add], tool_mode="text").run("1+2")
    assert result.output == 3
    assert result.steps[0].error == "no_code"
    assert "invalid JSON" in model.calls[1][-1].content


def test_tool_errors_unknown_tools_and_bad_arguments_are_observations():
    model = ScriptedModel([
        json_reply(("ad", {"a": 1, "b": 2})),
        json_reply(("add", {"a": 1})),
        json_reply(("final_answer", {"answer": 0})),
    ])
    result = ToolCallingAgent(model, [add], tool_mode="text").run("t")
    assert result.steps[0].error == "NameError"
    assert "did you mean `add`" in result.steps[0].observation
    assert result.steps[1].error == "TypeError"
    assert "parameters are: a, b" in result.steps[1].observation


def test_calls_of_one_step_run_concurrently():
    barrier = threading.Barrier(2, timeout=5)

    @tool
    def left() -> str:
        """Wait for the other call."""
        barrier.wait()
        return "left"

    @tool
    def right() -> str:
        """Wait for the other call."""
        barrier.wait()
        return "right"

    model = ScriptedModel([json_reply(("left", {}), ("right", {})), json_reply(("final_answer", {"answer": "ok"}))])
    result = ToolCallingAgent(model, [left, right], tool_mode="text").run("t")
    # Run one after the other, the first call would wait on the barrier alone and time out.
    assert result.output == "ok"
    assert [(c.name, c.result, c.error) for c in result.steps[0].tool_calls] == [
        ("left", "left", None), ("right", "right", None)]
    assert result.steps[0].observation == "1. left: left\n2. right: right"


def test_shares_step_budget_and_final_request_with_the_loop():
    model = ScriptedModel([json_reply(("add", {"a": 1, "b": 1}))] * 2 + [json_reply(("final_answer", {"answer": 2}))])
    result = ToolCallingAgent(model, [add], tool_mode="text", max_steps=2).run("t")
    assert result.status == "success" and len(result.steps) == 3
    assert "step limit" in model.calls[2][-1].content


def test_a_final_answer_sent_with_other_calls_waits_for_their_results():
    # The 1.5B's habit: tools and a guessed answer in one list, before any result existed.
    model = ScriptedModel([json_reply(("add", {"a": 2, "b": 3}), ("final_answer", {"answer": 99})),
                           json_reply(("final_answer", {"answer": 5}))])
    result = ToolCallingAgent(model, [add], tool_mode="text", answer_alone=True).run("t")
    assert result.status == "success" and result.output == 5 and len(result.steps) == 2
    first = result.steps[0]
    assert [(c.name, c.result) for c in first.tool_calls] == [("add", 5)]
    assert first.observation == f"1. add: 5\n2. final_answer: {HELD_ANSWER}" and not first.is_final
    assert HELD_ANSWER in model.calls[1][-1].content  # the model reads why, with the result


def test_the_last_step_takes_a_final_answer_sent_with_other_calls():
    model = ScriptedModel([json_reply(("add", {"a": 1, "b": 1})),
                           json_reply(("add", {"a": 2, "b": 2}), ("final_answer", {"answer": 4}))])
    result = ToolCallingAgent(model, [add], tool_mode="text", max_steps=1, answer_alone=True).run("t")
    assert "step limit" in model.calls[1][-1].content
    assert result.status == "success" and result.output == 4


def test_by_default_a_mixed_step_answers():
    model = ScriptedModel([json_reply(("add", {"a": 2, "b": 3}), ("final_answer", {"answer": 99}))])
    result = ToolCallingAgent(model, [add], tool_mode="text").run("t")
    assert result.status == "success" and result.output == 99 and len(result.steps) == 1


def test_final_answer_checks_can_send_the_model_back():
    model = ScriptedModel([json_reply(("final_answer", {"answer": -1})), json_reply(("final_answer", {"answer": 1}))])
    agent = ToolCallingAgent(model, tool_mode="text", final_answer_checks=[lambda a: a > 0 or "must be positive"])
    result = agent.run("t")
    assert result.output == 1
    assert "must be positive" in model.calls[1][-1].content


def test_stream_yields_tool_events():
    model = ScriptedModel([json_reply(("search", {"query": "mouse"})), json_reply(("final_answer", {"answer": 1}))])
    events = list(ToolCallingAgent(model, [search], tool_mode="text").run("t", stream=True))
    called = [e for e in events if isinstance(e, ToolCalled)]
    assert [(e.call.name, e.call.result) for e in called] == [("search", ["MOUSE"])]


def test_native_calls_with_unparseable_arguments_are_reported_not_run():
    bad = ModelReply("", tool_calls=(ToolCall("c1", "add", {"_raw": '{"a": 1,'}),))
    model = ScriptedModel([bad, ModelReply("", tool_calls=(ToolCall("c2", "final_answer", {"answer": 1}),))])
    result = ToolCallingAgent(model, [add]).run("t")
    assert result.steps[0].error == "ValueError"
    tool_message = model.calls[1][-1]
    assert tool_message.role == "tool" and tool_message.tool_call_id == "c1"
    assert "not a valid JSON object" in tool_message.content


def test_native_tool_calls_over_a_real_chat_completions_server():
    replies = [
        chat(None, tool_calls=[("call_a", "add", '{"a": 20, "b": 22}'), ("call_b", "search", '{"query": "x"}')],
             finish_reason="tool_calls", usage=(30, 10)),
        chat(None, tool_calls=[("call_c", "final_answer", '{"answer": 42}')], finish_reason="tool_calls",
             usage=(50, 5)),
    ]
    with ChatServer(replies) as server:
        model = OpenAICompatible("test-model", base_url=server.url, temperature=0.0)
        result = ToolCallingAgent(model, [add, search]).run("What is 20 + 22?")
        first, second = (r.json for r in server.requests if r.method == "POST")
    assert result.status == "success" and result.output == 42
    assert result.usage.prompt_tokens == 80 and result.usage.completion_tokens == 15
    assert [t["function"]["name"] for t in first["tools"]] == ["add", "search", "final_answer"]
    assert first["temperature"] == 0.0
    assistant, *tool_messages = second["messages"][-3:]
    assert [c["id"] for c in assistant["tool_calls"]] == ["call_a", "call_b"]
    assert [(m["role"], m["tool_call_id"], m["content"]) for m in tool_messages] == [
        ("tool", "call_a", "42"), ("tool", "call_b", '["X"]')]


def test_native_mode_reads_calls_a_server_returned_as_text():
    # llama.cpp's server renders the tools into the prompt but hands the calls back as text.
    text = '<tool_call>\n{"name": "final_answer", "arguments": {"answer": "done"}}\n</tool_call>'
    with ChatServer([chat(text)]) as server:
        result = ToolCallingAgent(OpenAICompatible("m", base_url=server.url), []).run("t")
    assert result.output == "done"


@tool
def count(items: list) -> int:
    """Count distinct items.

    Args:
        items: the items.
    """
    return len(set(map(str, items)))


def test_a_python_literal_call_holding_a_set_becomes_json_in_the_next_request():
    # The 1.5B wrote this on llama.cpp's server; the set made the next request unserialisable.
    text = "{'name': 'count', 'arguments': {'items': {2, 'A'}}}"
    with ChatServer([chat(text), chat('{"name": "final_answer", "arguments": {"answer": 2}}')]) as server:
        result = ToolCallingAgent(OpenAICompatible("m", base_url=server.url), [count]).run("t")
        second = [r.json for r in server.requests if r.method == "POST"][1]
    assert result.status == "success" and result.output == 2
    assistant = second["messages"][-2]
    assert assistant["content"] == "" and json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {
        "items": ["A", 2]}


def test_a_python_literal_with_no_json_form_is_an_observation_not_a_crash():
    model = ScriptedModel(["{'name': 'count', 'arguments': {'items': b'AB'}}",
                           json_reply(("final_answer", {"answer": 1}))])
    result = ToolCallingAgent(model, [count], tool_mode="text").run("t")
    assert result.status == "success"
    assert "bytes b'AB' has no JSON form" in model.calls[1][-1].content
