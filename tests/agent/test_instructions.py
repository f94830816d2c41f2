"""`instructions=` and `prompt_template=`: the system prompt you ask for, byte-identical every step."""

from __future__ import annotations

import pytest

from codeact import CodeAgent, tool
from codeact.agent.prompt import load_template
from codeact.agent.tool_calling_agent import ToolCallingAgent
from codeact.errors import ConfigError
from codeact.models import ScriptedModel
from tests._isolation import require_sandbox


@tool
def shout(text: str) -> str:
    """Upper-case a text.

    Args:
        text: what to shout.
    """
    return text.upper()


def code(src: str) -> str:
    return f"Thought: do it.\n```python\n{src}\n```"


@require_sandbox()
def test_instructions_end_the_system_prompt_and_stay_the_same_each_step():
    model = ScriptedModel([code("x = 1"), code("final_answer(x)")])
    result = CodeAgent(model, instructions="Answer in French.", store=False).run("t")
    assert result.output == 1
    first, second = (call[0] for call in model.calls)
    assert first.role == "system" and first.content.endswith("\n\nAnswer in French.\n")
    assert first.content.startswith(load_template("code_agent.txt").split("{tools}")[0])
    assert first == second


def test_without_options_the_shipped_template_is_the_prompt():
    agent = CodeAgent(ScriptedModel([]), store=False)
    shipped = load_template("code_agent.txt")
    assert agent._format().system_prompt() == shipped.replace("{tools}", "").replace(
        "{imports}", "You can import any installed module.")
    native = ToolCallingAgent(ScriptedModel([]), store=False)
    assert native._format().system_prompt() == load_template("tool_calling_native.txt").rstrip("\n")


def test_prompt_template_text_or_path_replaces_the_shipped_one(tmp_path):
    text = "Be brief.\nTools:\n{tools}\n{imports}\n"
    agent = CodeAgent(ScriptedModel([]), prompt_template=text, authorized_imports=["math"],
                      instructions="No loops.", store=False)
    assert agent._format().system_prompt() == (
        "Be brief.\nTools:\n\nYou can import only these modules: math.\n\nNo loops.\n")
    path = tmp_path / "prompt.txt"
    path.write_text("Call tools.\n{tools}", encoding="utf-8")
    json_agent = ToolCallingAgent(ScriptedModel([]), [shout], prompt_template=path, tool_mode="text", store=False)
    assert json_agent._format().system_prompt().startswith("Call tools.\ndef shout(text: str) -> str:")
    with pytest.raises(ConfigError, match="cannot read the prompt template"):
        CodeAgent(ScriptedModel([]), prompt_template=tmp_path / "missing.txt", store=False)
