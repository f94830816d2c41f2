"""Conversations: follow-up turns keep the history and the kernel; each turn is a linked run in the log."""

from __future__ import annotations

import asyncio

from codeact import CodeAgent
from codeact.agent.tool_calling_agent import ToolCallingAgent
from codeact.models import ModelReply, ScriptedModel, ToolCall
from codeact.runs.store import RunStore
from tests._isolation import require_sandbox


def code(src: str) -> str:
    return f"Thought: do it.\n```python\n{src}\n```"


@require_sandbox()
def test_follow_up_turns_keep_the_kernel_and_the_history(tmp_path):
    model = ScriptedModel([code("total = 40\nfinal_answer(total)"), code("final_answer(total + 2)")])
    store = RunStore(tmp_path / "runs.db")
    agent = CodeAgent(model, store=store)
    try:
        first = agent.run("set total to 40", reset=False)
        second = agent.run("add 2 to it", reset=False)
        assert (first.output, second.output) == (40, 42)  # `total` lived on in the same kernel
        sent = model.calls[1]
        assert sent[0] == model.calls[0][0]  # the same system prompt, byte for byte (prefix cache)
        assert [m.content for m in sent[1:4]] == [
            "Task: set total to 40", first.steps[0].reply, "Observation:\nFinal answer: 40"]
        assert sent[-1].content == "Task: add 2 to it"
        one, two = store.get(first.run_id).meta, store.get(second.run_id).meta
        assert one["conversation_id"] == two["conversation_id"] == agent.conversation_id
        assert (one["turn"], two["turn"], two["previous_run"]) == (1, 2, first.run_id)
        assert agent.sandbox is not None  # kept for the next turn...
    finally:
        agent.close()
    assert agent.sandbox is None  # ...until the agent is closed
    store.close()


@require_sandbox()
def test_chat_send_and_reset():
    model = ScriptedModel([code("x = 1\nfinal_answer(x)"), code("final_answer(x + 1)"),
                           code("final_answer('x' in globals())")])
    with CodeAgent(model, store=False).chat() as chat:
        assert chat.send("x is 1").output == 1
        assert chat.send("and plus one?").output == 2
        assert len(chat.history) == 7  # system, then (task, reply, observation) twice
        chat.reset()
        assert chat.history == ()
        assert chat.send("is x defined?").output is False  # a fresh kernel after reset
        assert len(model.calls[2]) == 2  # system prompt and task only


@require_sandbox()
def test_a_plain_run_starts_over_and_a_follow_up_to_it_is_told_the_kernel_restarted():
    model = ScriptedModel([code("final_answer(1)"), code("final_answer(2)"), code("final_answer(3)")])
    agent = CodeAgent(model, store=False)
    agent.run("one")
    assert agent.sandbox is None  # a plain run keeps nothing alive
    agent.run("two")
    assert len(model.calls[1]) == 2  # reset=True (the default): no history
    agent.run("three", reset=False)
    assert model.calls[2][-1].content.startswith("(The Python session was restarted")
    assert "Task: two" in [m.content for m in model.calls[2]]
    agent.close()


def test_tool_calling_agent_continues_with_valid_tool_messages():
    final = ToolCall("c1", "final_answer", {"answer": "Paris"})
    model = ScriptedModel([ModelReply("", tool_calls=(final,)),
                           ModelReply("", tool_calls=(ToolCall("c2", "final_answer", {"answer": "Rome"}),))])
    agent = ToolCallingAgent(model, store=False)
    assert agent.run("capital of France", reset=False).output == "Paris"
    assert asyncio.run(agent.arun("and of Italy?", reset=False)).output == "Rome"
    roles = [m.role for m in model.calls[1]]
    assert roles == ["system", "user", "assistant", "tool", "user"]
    assert model.calls[1][3].tool_call_id == "c1"


@require_sandbox()
def test_a_turn_cut_short_resumes_with_the_conversation_it_was_part_of(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    first = CodeAgent(ScriptedModel([code("final_answer('noted')"), code("y = 21 * 2")]), store=store)
    first.run("remember the number 21", reset=False)
    cut = first.run("double it", reset=False)  # the model fails after one step: no answer
    first.close()
    assert cut.status == "model_error"
    model = ScriptedModel([code("final_answer(y)")])
    resumed = CodeAgent(model, store=store).resume(cut.run_id)
    assert resumed.status == "success" and resumed.output == 42  # step 1 ran again for the kernel's state
    contents = [m.content for m in model.calls[0]]
    assert "Task: remember the number 21" in contents and "Task: double it" in contents
    store.close()
