"""Tools marked `at_start`: called once before the first step, their results in the task message."""

from __future__ import annotations

import pytest

from codeact import CodeAgent, tool
from codeact.agent.start_calls import HEADER, MAX_CHARS, start_calls_note
from codeact.agent.tool_calling_agent import ToolCallingAgent
from codeact.errors import ConfigError, ToolError
from codeact.models import ScriptedModel
from codeact.models.base import ModelReply, ToolCall
from codeact.runs.store import RunStore
from codeact.sandbox.process import ProcessSandbox
from codeact.tools.approval import require_approval
from tests._isolation import require_sandbox


def code(src: str) -> str:
    return f"Thought: go.\n```python\n{src}\n```"


def catalogue(calls: list[str]):
    @tool(at_start=True)
    def list_tables() -> dict:
        """The data tables and their columns."""
        calls.append("list_tables")
        return {"staff": ["name", "team"], "readings": ["station", "day"]}

    @tool
    def read_table(name: str) -> list:
        """Rows of a table.

        Args:
            name: the table.
        """
        calls.append(f"read_table:{name}")
        return [{"name": "Ines", "team": "data"}]

    return [list_tables, read_table]


@require_sandbox()
def test_the_task_message_shows_what_an_at_start_tool_returned_and_the_run_goes_on():
    calls: list[str] = []
    model = ScriptedModel([code("final_answer(read_table('staff')[0]['team'])")])
    result = CodeAgent(model, catalogue(calls), store=False).run("Which team is Ines in?")
    assert result.output == "data"
    task = model.calls[0][1]
    assert task.role == "user" and task.content == (
        "Task: Which team is Ines in?\n\n" + HEADER + "\n>>> list_tables()\n"
        "{'staff': ['name', 'team'], 'readings': ['station', 'day']}")
    assert calls == ["list_tables", "read_table:staff"]  # once, before the first step


def test_without_marked_tools_nothing_is_called_and_the_task_message_is_plain():
    calls: list[str] = []
    plain = [t for t in catalogue(calls)]
    plain[0].at_start = False
    model = ScriptedModel([ModelReply("", tool_calls=(ToolCall("c1", "final_answer", {"answer": 1}),))])
    assert ToolCallingAgent(model, plain, store=False).run("t").output == 1
    assert model.calls[0][1].content == "Task: t" and calls == []


def test_the_json_agent_gets_the_same_note():
    calls: list[str] = []
    model = ScriptedModel([ModelReply("", tool_calls=(ToolCall("c1", "final_answer", {"answer": 1}),))])
    ToolCallingAgent(model, catalogue(calls), store=False).run("t")
    assert model.calls[0][1].content.startswith(f"Task: t\n\n{HEADER}\n>>> list_tables()\n{{'staff'")


def test_a_failing_or_huge_result_is_shown_bounded_and_nothing_breaks():
    @tool(at_start=True)
    def broken() -> str:
        """Fails."""
        raise RuntimeError("database is down")

    @tool(at_start=True)
    def huge(limit: int = 10) -> str:
        """A long listing."""
        return "x" * (MAX_CHARS + 500)

    note = start_calls_note({"broken": broken, "huge": huge})
    assert ">>> broken()\nError: RuntimeError: database is down" in note
    assert note.endswith("x" * 10 + "... (500 more characters)")
    assert start_calls_note({}) == ""


def test_a_tool_that_needs_arguments_or_approval_cannot_be_marked():
    with pytest.raises(ToolError, match="`name` has no default"):
        @tool(at_start=True)
        def read(name: str) -> str:
            """Read."""
            return name

    with pytest.raises(ToolError, match="needs_approval"):
        @tool(at_start=True, needs_approval=True)
        def listing() -> str:
            """List."""
            return ""

    tools = catalogue([])
    require_approval(tools, "list_tables")  # marked later, by policy
    with pytest.raises(ConfigError, match="needs approval"):
        start_calls_note({t.name: t for t in tools})


@require_sandbox()
def test_resume_shows_the_recorded_note_without_calling_the_tool_again(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    calls: list[str] = []
    failed = CodeAgent(ScriptedModel([code("rows = read_table('staff')")]), catalogue(calls),
                       sandbox=ProcessSandbox, store=store).run("t")
    assert failed.status == "model_error" and calls == ["list_tables", "read_table:staff"]
    model = ScriptedModel([code("final_answer(len(rows))")])
    result = CodeAgent(model, catalogue(calls), sandbox=ProcessSandbox, store=store).resume(failed.run_id)
    assert result.output == 1
    assert calls == ["list_tables", "read_table:staff"]
    assert HEADER in model.calls[0][1].content
